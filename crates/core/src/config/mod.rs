//! The experiment schema ([`schema`]), its layered loading ([`load()`]) and value checks.

pub mod blocks;
mod controls;
mod load;
mod locate;
mod schema;
mod sources;
mod validate;

pub use load::{
    TOP_LEVEL_KEYS, ZooExpander, load, load_requested, load_with_zoo, place_of, resolve, to_toml,
};
pub use schema::*;
pub use validate::problems;
