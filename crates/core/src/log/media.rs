//! Text and image summaries: what `runner eval` and `predict` show in TensorBoard's Text and
//! Images dashboards. tensorboard-rs has no text summary and its image summary only takes
//! RGB (and panics otherwise), so these build the protos directly.

use image::{ImageEncoder, codecs::png::PngEncoder};
use protobuf::RepeatedField;
use tensorboard_proto::summary::{
    Summary, Summary_Image, Summary_Value, SummaryMetadata, SummaryMetadata_PluginData,
};
use tensorboard_proto::tensor::TensorProto;
use tensorboard_proto::types::DataType;

use crate::error::{Error, Result};

/// A Markdown text shown in TensorBoard's Text dashboard under `tag`.
pub fn text(tag: &str, markdown: &str) -> Summary {
    let mut plugin = SummaryMetadata_PluginData::new();
    plugin.set_plugin_name("text".into());
    let mut metadata = SummaryMetadata::new();
    metadata.set_plugin_data(plugin);
    let mut tensor = TensorProto::new();
    tensor.set_dtype(DataType::DT_STRING);
    tensor.mut_string_val().push(markdown.as_bytes().to_vec());
    let mut value = Summary_Value::new();
    value.set_tag(tag.into());
    value.set_metadata(metadata);
    value.set_tensor(tensor);
    one(value)
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
    let mut value = Summary_Value::new();
    value.set_tag(tag.into());
    value.set_image(img);
    Ok(one(value))
}

fn one(value: Summary_Value) -> Summary {
    let mut summary = Summary::new();
    summary.set_value(RepeatedField::from(vec![value]));
    summary
}
