//! Stable snake_case labels of the protobuf enums: `DATE_SOURCE_JSON_LD` is
//! `json_ld`, `STORE_OUTCOME_NOT_MODIFIED` is `not_modified`. JSON documents,
//! metric labels and the CLI all print these, so they are derived here once
//! from the generated names.

use crawlq_proto::v1::{CheckOutcome, DateSource, StoreOutcome};

/// An enum that has a stable snake_case label.
pub trait Label: Copy {
    /// The prefix protobuf puts on every value name.
    const PREFIX: &'static str;
    /// The generated SCREAMING_CASE name.
    fn proto_name(self) -> &'static str;

    /// The value's label, such as `json_ld`.
    fn label(self) -> String {
        self.proto_name()
            .trim_start_matches(Self::PREFIX)
            .to_ascii_lowercase()
    }
}

impl Label for DateSource {
    const PREFIX: &'static str = "DATE_SOURCE_";
    fn proto_name(self) -> &'static str {
        self.as_str_name()
    }
}

impl Label for StoreOutcome {
    const PREFIX: &'static str = "STORE_OUTCOME_";
    fn proto_name(self) -> &'static str {
        self.as_str_name()
    }
}

impl Label for CheckOutcome {
    const PREFIX: &'static str = "CHECK_OUTCOME_";
    fn proto_name(self) -> &'static str {
        self.as_str_name()
    }
}

/// The label of a raw enum value as carried in a message; empty when the
/// value is unknown to this build.
pub fn of<T: Label + TryFrom<i32>>(value: i32) -> String {
    T::try_from(value).map(Label::label).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_drop_the_prefix() {
        assert_eq!(DateSource::JsonLd.label(), "json_ld");
        assert_eq!(StoreOutcome::NotModified.label(), "not_modified");
        assert_eq!(of::<DateSource>(DateSource::FetchTime as i32), "fetch_time");
        assert_eq!(of::<StoreOutcome>(999), "");
    }
}
