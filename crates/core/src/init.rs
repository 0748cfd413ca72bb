//! How weights and biases start: `[init]` and a layer's `init = { ... }` (the specs), Burn's
//! own `Initializer` for each (with PyTorch's meaning of each scheme), and their checks.

use burn::nn::Initializer;

use serde::{Deserialize, Serialize};

use crate::problems::Problems;

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

/// `[init]`, or a layer's `init = { ... }`: how weights and biases start.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitConfig {
    #[serde(default)]
    pub weight: InitSpec,
    #[serde(default)]
    pub bias: InitSpec,
}

/// A layer's override of `[init]`: only the parameters it names change.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerInit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<InitSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<InitSpec>,
}

/// An initialisation scheme, chosen by `kind`. Gains and fan modes follow `torch.nn.init`.
/// Variants without values are written `{}`: serde lets a unit variant of a tagged enum
/// ignore keys it does not have (`{ kind = "default", std = 2 }` would pass silently).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum InitSpec {
    /// What PyTorch's layer does when nothing is said: for `Linear`, weights and biases
    /// uniform in ±1/sqrt(fan_in).
    Default {},
    Zeros {},
    Ones {},
    Constant {
        value: f64,
    },
    Normal {
        #[serde(default)]
        mean: f64,
        #[serde(default = "one")]
        std: f64,
    },
    /// Uniform in [a, b), as `torch.nn.init.uniform_(a, b)`.
    Uniform {
        #[serde(default)]
        a: f64,
        #[serde(default = "one")]
        b: f64,
    },
    XavierUniform {
        #[serde(default = "one")]
        gain: f64,
    },
    XavierNormal {
        #[serde(default = "one")]
        gain: f64,
    },
    /// `torch.nn.init.kaiming_uniform_`: bound = gain * sqrt(3 / fan). Default gain sqrt(2)
    /// (PyTorch's for ReLU).
    KaimingUniform {
        #[serde(default = "sqrt_two")]
        gain: f64,
        #[serde(default)]
        mode: FanMode,
    },
    KaimingNormal {
        #[serde(default = "sqrt_two")]
        gain: f64,
        #[serde(default)]
        mode: FanMode,
    },
}

/// Which fan Kaiming init scales by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FanMode {
    #[default]
    FanIn,
    FanOut,
}

impl Default for InitSpec {
    fn default() -> Self {
        InitSpec::Default {}
    }
}

/// The weight and bias init of a layer: its own `init` over `[init]`.
pub fn of_layer<'a>(
    local: &'a Option<LayerInit>,
    default: &'a InitConfig,
) -> (&'a InitSpec, &'a InitSpec) {
    let local = local.as_ref();
    (
        local
            .and_then(|l| l.weight.as_ref())
            .unwrap_or(&default.weight),
        local.and_then(|l| l.bias.as_ref()).unwrap_or(&default.bias),
    )
}

/// Checks a layer's `init` table; `key` is the layer's (`model.layers[2]`).
pub fn check_layer(p: &mut Problems, init: &Option<LayerInit>, key: &str) {
    if let Some(init) = init {
        if let Some(w) = &init.weight {
            check(p, w, &format!("{key}.init.weight"));
        }
        if let Some(b) = &init.bias {
            check(p, b, &format!("{key}.init.bias"));
        }
    }
}

/// Values serde accepts that make no sense (a negative std, a > b).
pub fn check(p: &mut Problems, init: &InitSpec, key: &str) {
    match init {
        InitSpec::Normal { mean, std } => {
            p.non_negative(*std, &format!("{key}.std"));
            p.check(
                mean.is_finite(),
                format!("{key}.mean"),
                "must be a finite number",
            );
        }
        InitSpec::Uniform { a, b } => p.check(
            a.is_finite() && b.is_finite() && a < b,
            format!("{key}.a"),
            format!("needs a < b (got a = {a}, b = {b})"),
        ),
        InitSpec::Constant { value } => p.check(
            value.is_finite(),
            format!("{key}.value"),
            "must be a finite number",
        ),
        InitSpec::XavierUniform { gain }
        | InitSpec::XavierNormal { gain }
        | InitSpec::KaimingUniform { gain, .. }
        | InitSpec::KaimingNormal { gain, .. } => p.non_negative(*gain, &format!("{key}.gain")),
        InitSpec::Default {} | InitSpec::Zeros {} | InitSpec::Ones {} => {}
    }
}

fn one() -> f64 {
    1.0
}
fn sqrt_two() -> f64 {
    std::f64::consts::SQRT_2
}
