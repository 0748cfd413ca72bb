//! Text and image summaries: what `runner eval` and `predict` show in TensorBoard's Text and
//! Images dashboards. tensorboard-rs has no text summary and its image summary only takes
//! RGB (and panics otherwise), so these build the protos directly.

use image::{ImageEncoder, codecs::png::PngEncoder};
use protobuf::RepeatedField;
use tensorboard_proto::summary::{Summary, Summary_Image, Summary_Value};
use tensorboard_proto::tensor::TensorProto;
use tensorboard_proto::types::DataType;

use super::plugin::Plugin;
use crate::error::{Error, Result};

/// A Markdown text shown in TensorBoard's Text dashboard under `tag`.
pub fn text(tag: &str, markdown: &str) -> Summary {
    let mut tensor = TensorProto::new();
    tensor.set_dtype(DataType::DT_STRING);
    tensor.mut_string_val().push(markdown.as_bytes().to_vec());
    let mut value = Plugin::Text.value(tag, vec![]);
    value.set_tensor(tensor);
    one(value)
}

/// The tag of a run's resolved config in the Text tab.
pub const CONFIG_TAG: &str = "config";

/// A run's resolved config (the text of its `config.toml`) for the Text tab, as a TOML code
/// block under [`CONFIG_TAG`].
pub fn config_text(toml: &str) -> Summary {
    let fence = if toml.contains("```") { "~~~" } else { "```" };
    text(
        CONFIG_TAG,
        &format!(
            "The resolved config of this run (`config.toml` in its folder):\n\n{fence}toml\n{toml}{fence}\n"
        ),
    )
}

/// An 8-bit grayscale (`channels` 1) or RGB (3) image, row-major, shown under `tag`.
pub fn image(tag: &str, pixels: &[u8], width: u32, height: u32, channels: u8) -> Result<Summary> {
    let colour = match channels {
        1 => image::ExtendedColorType::L8,
        _ => image::ExtendedColorType::Rgb8,
    };
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(pixels, width, height, colour)
        .map_err(|e| Error::Run(format!("cannot encode the image {tag} as PNG: {e}")))?;
    let mut img = Summary_Image::new();
    img.set_width(width as i32);
    img.set_height(height as i32);
    img.set_colorspace(channels as i32);
    img.set_encoded_image_string(png);
    // The legacy `image` field, which both the server and the legacy reader understand.
    let mut value = Plugin::Images.value(tag, vec![]);
    value.set_image(img);
    Ok(one(value))
}

fn one(value: Summary_Value) -> Summary {
    let mut summary = Summary::new();
    summary.set_value(RepeatedField::from(vec![value]));
    summary
}
