//! Built with `--features tch`: a network with the same weights computes the same outputs on
//! libtorch as on flex.
#![cfg(feature = "tch")]

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use kiln_core::config;
use kiln_core::model::{self, Network};

#[test]
fn a_forward_pass_with_the_same_weights_agrees_within_1e_4() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("net.toml");
    std::fs::write(
        &file,
        r#"name = "net"
seed = 9
[data]
dataset = "mnist"
[model]
input = [1, 28, 28]
layers = [
  { type = "conv2d", filters = 8, kernel = 5, padding = 2 },
  { type = "batchnorm", activation = "relu" },
  { type = "max_pool2d", kernel = 2 },
  { type = "flatten" },
  { type = "linear", units = 32, activation = "tanh" },
  { type = "linear", units = 10 },
]
[optimizer]
kind = "adam"
"#,
    )
    .unwrap();
    let config = config::load(&file, &[]).unwrap();
    let input = model::input_shape(&config.model, &[1, 28, 28]).unwrap();
    let plans = model::plan(&config.model, &input, 10).unwrap();
    let build = |device: &Device| Network::new(&config.model, &config.init, &input, &plans, device);

    let flex = Device::flex();
    flex.seed(9);
    let on_flex = build(&flex);
    let record = on_flex.clone().into_record().into_bytes().unwrap();
    let torch = Device::libtorch();
    let on_torch =
        build(&torch).load_record(burn::store::ModuleRecord::from_bytes(record).unwrap());

    let values: Vec<f32> = (0..16 * 784)
        .map(|i| ((i * 7919) % 255) as f32 / 255.0)
        .collect();
    let x = |device: &Device| {
        Tensor::<2>::from_data(TensorData::new(values.clone(), [16, 784]), device)
    };
    let a: Vec<f32> = on_flex.forward(x(&flex)).into_data().to_vec().unwrap();
    let b: Vec<f32> = on_torch.forward(x(&torch)).into_data().to_vec().unwrap();
    assert_eq!(a.len(), 160);
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "largest difference {worst}");
}
