//! Topic name rules, as Kafka's `Topic.validate`: legal characters `[a-zA-Z0-9._-]`, at most 249
//! characters, not empty, not `.` or `..`; and names that differ only in `.` versus `_` collide
//! (both map to the same metric name).

/// Longest legal topic name (Kafka leaves room for a partition suffix in a 255-byte file name).
pub const MAX_NAME_LENGTH: usize = 249;

/// Checks a topic name; the error text is Kafka's.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is invalid: the empty string is not allowed".into());
    }
    if name == "." || name == ".." {
        return Err(format!("Topic name is invalid: '{name}' is not allowed"));
    }
    if name.len() > MAX_NAME_LENGTH {
        return Err(format!(
            "Topic name is invalid: the length of '{name}' is longer than the max allowed length {MAX_NAME_LENGTH}"
        ));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        return Err(format!(
            "Topic name is invalid: '{name}' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// The name with `.` replaced by `_`; two topics with the same collision key cannot coexist.
pub fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

/// Kafka's internal topics (`Topic.isInternal`): listed with `is_internal` in Metadata; clients may
/// not produce to them.
pub const INTERNAL_TOPICS: [&str; 3] = ["__consumer_offsets", "__transaction_state", "__share_group_state"];

/// Whether `name` is one of Kafka's internal topics.
pub fn is_internal(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kafka_rules() {
        assert!(validate_topic_name("orders-v1.eu_west").is_ok());
        for bad in ["", ".", "..", "bad/name", "spa ce", "ünï"] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
        assert_eq!(collision_key("a.b"), collision_key("a_b"));
    }

    proptest! {
        #[test]
        fn accepted_names_are_safe_directory_names(name in "\\PC{0,300}") {
            if validate_topic_name(&name).is_ok() {
                prop_assert!(!name.contains('/') && name != "." && name != ".." && name.len() <= 249);
            }
        }
    }
}
