//! Layer specs -> a Burn module: shape inference ([`shape`]), initialisation ([`init`]) and the
//! network itself ([`network`]).

pub mod memory;
pub mod network;
pub mod shape;
pub mod summary;

pub use crate::layers::LayerPlan;
pub use network::Network;
pub use shape::{check_classes, input_shape, plan, plan_layers};
