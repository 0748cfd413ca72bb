//! `resnet`: the CIFAR ResNets of He et al. 2016 (§4.2): a 3x3 convolution of `width`
//! filters, three stages of n basic blocks (`width`, 2x`width`, 4x`width` filters; the first
//! block of stages 2 and 3 halves the size), global average pooling and `classes` logits;
//! `depth` = 6n + 2. A basic block is conv 3x3 + BN + ReLU, conv 3x3 + BN, added to its input
//! and then ReLU; where the shape changes, the input goes through a projection (1x1 conv with
//! the stride + BN, the paper's option B). Convolutions have no bias: BatchNorm follows each.

use kiln_core::layers::{
    Activation, Add, Batchnorm, Conv2d, GlobalAvgPool2d, LayerSpec, Linear, Node, Size2,
};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetParams {
    #[serde(default = "twenty")]
    pub depth: usize,
    #[serde(default = "sixteen")]
    pub width: usize,
    #[serde(default = "ten")]
    pub classes: usize,
}

fn twenty() -> usize {
    20
}
fn sixteen() -> usize {
    16
}
fn ten() -> usize {
    10
}

impl ResNetParams {
    pub fn layers(&self) -> Result<Vec<Node>, String> {
        if self.depth < 8 || !(self.depth - 2).is_multiple_of(6) {
            return Err(format!(
                "model.params.depth = {} is not 6n+2; use 20, 32, 44, 56 or 110",
                self.depth
            ));
        }
        if self.width == 0 || self.classes == 0 {
            return Err("model.params.width and classes must be at least 1".into());
        }
        let blocks = (self.depth - 2) / 6;
        let mut layers = vec![
            conv(self.width, 3, 1).into(),
            Node::named(bn(Activation::Relu), "stem"),
        ];
        let mut input = "stem".to_string();
        for stage in 0..3 {
            let filters = self.width << stage;
            for block in 0..blocks {
                let stride = if stage > 0 && block == 0 { 2 } else { 1 };
                let name = format!("stage{}.{block}", stage + 1);
                layers.push(conv(filters, 3, stride).into());
                layers.push(bn(Activation::Relu).into());
                layers.push(conv(filters, 3, 1).into());
                let main = format!("{name}.main");
                layers.push(Node::named(bn(Activation::Identity), &main));
                let shortcut = if stride == 1 {
                    input.clone()
                } else {
                    let projected = format!("{name}.shortcut");
                    layers.push(Node::from(conv(filters, 1, stride)).reading(&[&input]));
                    layers.push(Node::named(bn(Activation::Identity), &projected));
                    projected
                };
                let add = LayerSpec::Add(Add {
                    activation: Activation::Relu,
                });
                layers.push(Node::named(add, &name).reading(&[&main, &shortcut]));
                input = name;
            }
        }
        layers.push(LayerSpec::GlobalAvgPool2d(GlobalAvgPool2d {}).into());
        layers.push(LayerSpec::Linear(Linear::new(self.classes, Activation::Identity)).into());
        Ok(layers)
    }
}

/// `filters` square `kernel`s with `stride`, padded to keep the size (halved by stride 2), no bias.
fn conv(filters: usize, kernel: usize, stride: usize) -> LayerSpec {
    let mut conv = Conv2d::new(filters, kernel, kernel / 2, Activation::Identity);
    conv.stride = Size2([stride, stride]);
    conv.bias = false;
    LayerSpec::Conv2d(conv)
}

fn bn(activation: Activation) -> LayerSpec {
    LayerSpec::Batchnorm(Batchnorm::new(activation))
}
