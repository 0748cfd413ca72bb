//! `global_avg_pool2d`: the mean of each channel over all its positions, `[c, h, w]` -> `[c]`
//! (Keras' GlobalAveragePooling2D; the end of a ResNet). No `flatten` is needed after it.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::size::image;
use super::{Activation, Features, Layer, LayerKind, LayerPlan, Op, Transform};
use crate::init::InitConfig;
use crate::problems::Problems;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalAvgPool2d {}

impl LayerKind for GlobalAvgPool2d {
    fn check(&self, _: &mut Problems, _: &str) {}
    fn plan(&self, input: &[usize]) -> Result<LayerPlan, String> {
        let [c, _, _] = image(input)?;
        Ok(LayerPlan::reshaping("global_avg_pool2d", input, vec![c]))
    }
    fn build(&self, _: &[usize], _: &InitConfig, _: &Device) -> Layer {
        Op::layer(self.clone())
    }
    fn torch(&self, _: &[usize]) -> Option<String> {
        Some("nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())".to_string())
    }
    fn activation(&self) -> Activation {
        Activation::Identity
    }
}

impl Transform for GlobalAvgPool2d {
    fn pre_activation(&self, x: Features) -> (Features, Activation) {
        let x = x.image();
        let [batch, channels, _, _] = x.dims();
        let means = x.flatten::<3>(2, 3).mean_dim(2).reshape([batch, channels]);
        (Features::Flat(means), Activation::Identity)
    }
    fn traced(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Tensor, TensorData};

    use super::*;
    use crate::layers::LayerSpec;

    #[test]
    fn averages_each_channel_of_each_example() {
        let device = Device::flex();
        // 2 examples, 2 channels of 2x3 values: 0..24.
        let values: Vec<f32> = (0..24).map(|v| v as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(values, [2, 2, 2, 3]), &device);
        let (out, _) = GlobalAvgPool2d {}.pre_activation(Features::Image(x));
        let got = out.flat().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(got, vec![2.5, 8.5, 14.5, 20.5]);
    }

    #[test]
    fn gradients_spread_evenly_over_the_positions() {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::ones([1, 2, 2, 2], &device).require_grad();
        let (out, _) = GlobalAvgPool2d {}.pre_activation(Features::Image(x.clone()));
        let grads = out.flat().sum().backward();
        let g = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(g, vec![0.25; 8]);
    }

    #[test]
    fn plans_channels_out_of_an_image_and_refuses_a_flat_input() {
        let spec: LayerSpec = toml::from_str("type = \"global_avg_pool2d\"").unwrap();
        let plan = spec.kind().plan(&[16, 8, 8]).unwrap();
        assert_eq!((plan.output, plan.params), (vec![16], 0));
        let err = spec.kind().plan(&[64]).unwrap_err();
        assert!(err.contains("needs an image input"), "{err}");
    }
}
