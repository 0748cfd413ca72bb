//! Which TensorBoard plugin shows a summary, and how it stores its data: the complete
//! `SummaryMetadata` every value kiln writes carries.
//!
//! TensorBoard's server (its default, Rust "fast" loader) files each tag of a run under the
//! plugin and data class of the tag's *first* value; a later value of another kind under the
//! same tag is then unreadable. So every value names its plugin and data class, and
//! [`super::EventWriter`] refuses a tag that changes kind.

use protobuf::Message;
use tensorboard_proto::summary::{Summary_Value, SummaryMetadata, SummaryMetadata_PluginData};

/// A TensorBoard plugin (a dashboard tab) kiln writes summaries for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plugin {
    Scalars,
    Histograms,
    Images,
    Text,
    PrCurves,
    HParams,
}

/// `SummaryMetadata.data_class` (field 4 of TensorBoard's summary.proto, newer than the proto
/// tensorboard-proto was generated from, so written as an unknown field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataClass {
    Scalar = 1,
    Tensor = 2,
    BlobSequence = 3,
}

const DATA_CLASS_FIELD: u32 = 4;

impl Plugin {
    /// The plugin's name in event files (`plugin_data.plugin_name`).
    pub fn name(self) -> &'static str {
        match self {
            Plugin::Scalars => "scalars",
            Plugin::Histograms => "histograms",
            Plugin::Images => "images",
            Plugin::Text => "text",
            Plugin::PrCurves => "pr_curves",
            Plugin::HParams => "hparams",
        }
    }

    fn data_class(self) -> DataClass {
        match self {
            Plugin::Scalars => DataClass::Scalar,
            Plugin::Histograms | Plugin::Text | Plugin::PrCurves | Plugin::HParams => {
                DataClass::Tensor
            }
            Plugin::Images => DataClass::BlobSequence,
        }
    }

    /// The metadata of a value shown by this plugin; `content` is the plugin's own data
    /// (empty for most).
    pub fn metadata(self, content: Vec<u8>) -> SummaryMetadata {
        let mut plugin = SummaryMetadata_PluginData::new();
        plugin.set_plugin_name(self.name().into());
        plugin.set_content(content);
        let mut metadata = SummaryMetadata::new();
        metadata.set_plugin_data(plugin);
        metadata
            .mut_unknown_fields()
            .add_varint(DATA_CLASS_FIELD, self.data_class() as u64);
        metadata
    }

    /// A value tagged `tag` with this plugin's metadata and no data yet.
    pub fn value(self, tag: &str, content: Vec<u8>) -> Summary_Value {
        let mut value = Summary_Value::new();
        value.set_tag(tag.into());
        value.set_metadata(self.metadata(content));
        value
    }
}

/// The plugin a value names in its metadata (`""` when it names none).
pub fn of(value: &Summary_Value) -> &str {
    value.get_metadata().get_plugin_data().get_plugin_name()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_carries_the_data_class_as_field_4() {
        let bytes = Plugin::Images.metadata(vec![]).write_to_bytes().unwrap();
        // Field 4, varint (tag byte 0x20), value 3 (DATA_CLASS_BLOB_SEQUENCE).
        assert!(bytes.ends_with(&[0x20, 3]), "{bytes:?}");
        let bytes = Plugin::Scalars.metadata(vec![]).write_to_bytes().unwrap();
        assert!(bytes.ends_with(&[0x20, 1]), "{bytes:?}");
    }
}
