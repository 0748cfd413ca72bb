//! What flows between layers: a batch of flat examples `[batch, features]` or of images
//! `[batch, channels, height, width]`.

use burn::tensor::Tensor;

use super::Activation;

/// A batch between two layers.
#[derive(Debug, Clone)]
pub enum Features {
    Flat(Tensor<2>),
    Image(Tensor<4>),
}

impl Features {
    /// `f` applied to every value (softmax over each example's features, image or flat).
    pub fn apply(self, f: Activation) -> Features {
        match self {
            Features::Flat(t) => Features::Flat(f.apply(t)),
            Features::Image(t) => Features::Image(f.apply(t)),
        }
    }

    /// Every value of the batch in one dimension.
    pub fn flat_all(self) -> Tensor<1> {
        match self {
            Features::Flat(t) => flat(t),
            Features::Image(t) => flat(t),
        }
    }

    /// Collapses to `[batch, features]` (a no-op on flat batches).
    pub fn flat(self) -> Tensor<2> {
        match self {
            Features::Flat(t) => t,
            Features::Image(t) => t.flatten(1, 3),
        }
    }

    /// As `[batch, c, h, w]`; shape planning guarantees image layers receive images.
    pub fn image(self) -> Tensor<4> {
        match self {
            Features::Image(t) => t,
            Features::Flat(t) => {
                let [batch, features] = t.dims();
                t.reshape([batch, features, 1, 1])
            }
        }
    }

    /// Gives each example `shape` (1 to 3 sizes; `[h, w]` means one channel).
    pub fn reshape(self, shape: &[usize]) -> Features {
        let x = self.flat();
        let [batch, _] = x.dims();
        match *shape {
            [c, h, w] => Features::Image(x.reshape([batch, c, h, w])),
            [h, w] => Features::Image(x.reshape([batch, 1, h, w])),
            _ => Features::Flat(x),
        }
    }
}

/// Every element of `t` in one dimension.
pub fn flat<const D: usize>(t: Tensor<D>) -> Tensor<1> {
    let n = t.shape().num_elements();
    t.reshape([n])
}
