//! `add` and `concat`: layers that read several others (`from = ["a", "b"]`) and merge them,
//! optionally followed by an activation (a residual block ends in `add` + `relu`). The merge
//! itself happens where the network gathers a layer's inputs ([`MergeOp::combine`]); what is
//! left for the layer is its activation, so it builds as a parameter-free [`Op`].

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{Activation, Features, Layer, LayerKind, LayerPlan, Op, Transform, labelled};
use crate::init::InitConfig;
use crate::problems::Problems;

/// How a merge layer combines its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeOp {
    /// Element-wise sum; every input has the same shape.
    Add,
    /// Side by side along channels (images) or features (vectors); the other sizes agree.
    Concat,
}

impl MergeOp {
    pub fn name(self) -> &'static str {
        match self {
            MergeOp::Add => "add",
            MergeOp::Concat => "concat",
        }
    }

    /// The shape of one merged example; `Err` names every input's shape and the fix.
    pub fn shape(self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        let first = inputs.first().ok_or("has no inputs")?.to_vec();
        // A [height, width] example is one channel to the network but not to torch's export,
        // which would join it along its height: ask for the channel to be written.
        if let Some(flat) = inputs.iter().find(|s| s.len() == 2) {
            return Err(format!(
                "reads an input of shape {flat:?}; merge images with their channels, e.g. [model] input = [1, {}, {}]",
                flat[0], flat[1]
            ));
        }
        let listed = || {
            inputs
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(" and ")
        };
        match self {
            MergeOp::Add => {
                if inputs.iter().any(|s| *s != first.as_slice()) {
                    return Err(format!(
                        "adds inputs of shapes {}, which differ; add needs equal shapes (a 1x1 conv2d with the right filters and stride makes a shortcut fit)",
                        listed()
                    ));
                }
                Ok(first)
            }
            MergeOp::Concat => {
                let rest_agrees = inputs
                    .iter()
                    .all(|s| s.len() == first.len() && s[1..] == first[1..]);
                if !rest_agrees {
                    return Err(format!(
                        "concatenates inputs of shapes {}; concat joins along the first size (channels or features) and needs the others equal",
                        listed()
                    ));
                }
                let mut out = first;
                out[0] = inputs.iter().map(|s| s[0]).sum();
                Ok(out)
            }
        }
    }

    /// `first` and `rest` merged into one batch (their shapes were checked by [`Self::shape`]).
    pub fn combine(self, first: Features, rest: Vec<Features>) -> Features {
        match (self, first) {
            (MergeOp::Add, first) => rest.into_iter().fold(first, |sum, x| match sum {
                Features::Image(a) => Features::Image(a + x.image()),
                Features::Flat(a) => Features::Flat(a + x.flat()),
            }),
            (MergeOp::Concat, Features::Image(first)) => {
                let all = std::iter::once(first).chain(rest.into_iter().map(Features::image));
                Features::Image(Tensor::cat(all.collect(), 1))
            }
            (MergeOp::Concat, Features::Flat(first)) => {
                let all = std::iter::once(first).chain(rest.into_iter().map(Features::flat));
                Features::Flat(Tensor::cat(all.collect(), 1))
            }
        }
    }

    /// The PyTorch expression that merges the Python variables `inputs`.
    pub fn torch(self, inputs: &[String]) -> String {
        match self {
            MergeOp::Add => inputs.join(" + "),
            MergeOp::Concat => format!("torch.cat([{}], dim=1)", inputs.join(", ")),
        }
    }
}

/// `{ type = "add", from = ["a", "b"], activation = "relu" }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Add {
    #[serde(default, skip_serializing_if = "Activation::is_identity")]
    pub activation: Activation,
}

/// `{ type = "concat", from = ["a", "b"] }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Concat {
    #[serde(default, skip_serializing_if = "Activation::is_identity")]
    pub activation: Activation,
}

/// Both merge kinds, which differ only in their [`MergeOp`].
macro_rules! merge_kind {
    ($spec:ident, $op:expr) => {
        impl LayerKind for $spec {
            fn check(&self, _: &mut Problems, _: &str) {}
            /// `input` is the merged shape ([`MergeOp::shape`]).
            fn plan(&self, input: &[usize]) -> Result<LayerPlan, String> {
                let label = labelled($op.name(), self.activation);
                Ok(LayerPlan::reshaping(label, input, input.to_vec()))
            }
            fn build(&self, _: &[usize], _: &InitConfig, _: &Device) -> Layer {
                Op::layer(Merged(self.activation))
            }
            fn torch(&self, _: &[usize]) -> Option<String> {
                None
            }
            fn activation(&self) -> Activation {
                self.activation
            }
        }
    };
}

merge_kind!(Add, MergeOp::Add);
merge_kind!(Concat, MergeOp::Concat);

/// What is left of a merge once its inputs are combined: its activation.
#[derive(Debug)]
struct Merged(Activation);

impl Transform for Merged {
    fn pre_activation(&self, x: Features) -> (Features, Activation) {
        (x, self.0)
    }
    fn traced(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;

    use super::*;

    #[test]
    fn add_needs_equal_shapes_and_concat_equal_sizes_but_the_first() {
        assert_eq!(
            MergeOp::Add.shape(&[&[4, 8, 8], &[4, 8, 8]]).unwrap(),
            vec![4, 8, 8]
        );
        let err = MergeOp::Add.shape(&[&[4, 8, 8], &[8, 4, 4]]).unwrap_err();
        assert!(err.contains("[4, 8, 8] and [8, 4, 4]"), "{err}");
        assert_eq!(
            MergeOp::Concat.shape(&[&[4, 8, 8], &[2, 8, 8]]).unwrap(),
            vec![6, 8, 8]
        );
        assert_eq!(MergeOp::Concat.shape(&[&[3], &[5]]).unwrap(), vec![8]);
        let err = MergeOp::Concat
            .shape(&[&[4, 8, 8], &[4, 4, 4]])
            .unwrap_err();
        assert!(err.contains("[4, 8, 8] and [4, 4, 4]"), "{err}");
        assert!(MergeOp::Concat.shape(&[&[4, 8, 8], &[4]]).is_err());
        let err = MergeOp::Add.shape(&[&[28, 28], &[28, 28]]).unwrap_err();
        assert!(err.contains("input = [1, 28, 28]"), "{err}");
    }

    #[test]
    fn combines_batches() {
        let device = Device::flex();
        let t = |v: Vec<f32>| {
            Features::Image(Tensor::<4>::from_data(
                TensorData::new(v, [1, 2, 1, 1]),
                &device,
            ))
        };
        let sum = MergeOp::Add.combine(t(vec![1.0, 2.0]), vec![t(vec![10.0, 20.0])]);
        assert_eq!(
            sum.flat().into_data().try_to_vec::<f32>().unwrap(),
            vec![11.0, 22.0]
        );
        let cat = MergeOp::Concat.combine(t(vec![1.0, 2.0]), vec![t(vec![3.0, 4.0])]);
        let Features::Image(cat) = cat else {
            panic!("concat of images is an image")
        };
        assert_eq!(cat.dims(), [1, 4, 1, 1]);
        assert_eq!(
            cat.into_data().try_to_vec::<f32>().unwrap(),
            vec![1.0, 2.0, 3.0, 4.0]
        );
    }
}
