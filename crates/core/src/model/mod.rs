//! Layer specs -> a Burn module: shape inference ([`shape`]), initialisation ([`init`]) and the
//! network itself ([`network`]).

mod host_layers;
pub mod init;
pub mod memory;
pub mod network;
pub mod shape;
pub mod summary;

pub use network::Network;
pub use shape::{LayerPlan, check_classes, input_shape, plan, plan_layers};
