//! `[init]` specs -> Burn's own `Initializer`, with PyTorch's meaning of each scheme.

use burn::nn::Initializer;

use crate::config::{FanMode, InitSpec};

/// Burn's initializer for `spec`. Burn computes fans from the `fan_in`/`fan_out` it is given
/// (the layer's), so Xavier and Kaiming on a bias use the layer's fans too.
pub fn initializer(spec: &InitSpec) -> Initializer {
    match *spec {
        // torch.nn.Linear.reset_parameters: kaiming_uniform_(a = sqrt(5)) on the weight, i.e.
        // bound 1/sqrt(fan_in), and the same bound for the bias. Burn's KaimingUniform has
        // bound = sqrt(3) * gain / sqrt(fan), so gain = 1/sqrt(3) gives exactly that for both.
        InitSpec::Default {} => Initializer::KaimingUniform {
            gain: 1.0 / 3.0f64.sqrt(),
            fan_out_only: false,
        },
        InitSpec::Zeros {} => Initializer::Zeros,
        InitSpec::Ones {} => Initializer::Ones,
        InitSpec::Constant { value } => Initializer::Constant { value },
        InitSpec::Normal { mean, std } => Initializer::Normal { mean, std },
        InitSpec::Uniform { a, b } => Initializer::Uniform { min: a, max: b },
        InitSpec::XavierUniform { gain } => Initializer::XavierUniform { gain },
        InitSpec::XavierNormal { gain } => Initializer::XavierNormal { gain },
        InitSpec::KaimingUniform { gain, mode } => Initializer::KaimingUniform {
            gain,
            fan_out_only: mode == FanMode::FanOut,
        },
        InitSpec::KaimingNormal { gain, mode } => Initializer::KaimingNormal {
            gain,
            fan_out_only: mode == FanMode::FanOut,
        },
    }
}
