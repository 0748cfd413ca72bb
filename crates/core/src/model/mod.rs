//! The network of an experiment: its layers planned over the input shape ([`shape`],
//! [`planned`]), built as one Burn module ([`network`]), counted ([`summary`]) and checked
//! against the machine's memory ([`memory`]). What each layer does is in [`crate::layers`].

pub mod graph;
pub mod memory;
pub mod network;
mod planned;
pub mod shape;
pub mod summary;

pub use crate::layers::LayerPlan;
pub use network::Network;
pub use planned::{Planned, memory_problem, plan_described, plan_only};
pub use shape::{check_classes, input_shape, plan, plan_layers, unread_warnings};
