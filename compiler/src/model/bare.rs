//! Layer ops written bare. `Flatten` is a unit variant and can be written as just its name
//! (RON `Flatten`, JSON `"Flatten"`), but `BatchNorm` and `Dropout` carry fields with
//! defaults, which serde's derived code accepts only as `BatchNorm()` / `{"BatchNorm": {}}`.
//! A user who writes every op alike should not have to know which ones have fields.
//!
//! The derived deserializer of [`Op`] runs unchanged behind a thin wrapper that watches each
//! struct variant. When the format finds nothing struct-like after the op's name (RON: no
//! `(`; JSON: a bare string) it fails without ever consulting the variant's field visitor;
//! only then is the variant filled from an empty field list, so defaults apply. An op with a
//! required field (`Dense` needs `out_features`) gets an error naming the op and showing
//! the spelling with fields. Anything the format did parse as the variant's content (a
//! wrong type, an unknown field) reports its own error as before.

use super::Op;
use serde::de::{
    self, value::StrDeserializer, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer,
    MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde::Deserialize;
use std::cell::{Cell, RefCell};
use std::fmt;

/// Deserializes a layer's op, accepting struct variants written bare (see the module docs).
pub(super) fn op<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Op, D::Error> {
    Op::deserialize(BareVariants(deserializer))
}

/// A deserializer that passes everything through, watching the struct variants of enums.
struct BareVariants<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for BareVariants<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_enum(name, variants, EnumVisitor(visitor))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

/// The enum's own visitor, handed a watched [`EnumAccess`].
struct EnumVisitor<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for EnumVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(Enum(data))
    }
}

/// Reads the variant's name itself (for messages), then lets the enum's seed read it again.
struct Enum<A>(A);

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Enum<A> {
    type Error = A::Error;
    type Variant = Variant<A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let (name, access) = self.0.variant_seed(VariantName)?;
        let by_name: StrDeserializer<'_, A::Error> = name.as_str().into_deserializer();
        let value = seed.deserialize(by_name)?;
        Ok((value, Variant { access, name }))
    }
}

/// The name of a variant, as written.
struct VariantName;

impl<'de> DeserializeSeed<'de> for VariantName {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for VariantName {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the name of a layer op")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<String, E> {
        Ok(name.to_owned())
    }
}

/// A variant's content, with struct variants allowed to be absent.
struct Variant<A> {
    access: A,
    name: String,
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Variant<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.access.unit_variant()
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        self.access.newtype_variant_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.access.tuple_variant(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let slot = RefCell::new(Some(visitor));
        let consulted = Cell::new(false);
        let watched = Watched {
            slot: &slot,
            consulted: &consulted,
        };
        let err = match self.access.struct_variant(fields, watched) {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        match slot.into_inner() {
            Some(visitor) if !consulted.get() => fill_defaults(&self.name, visitor),
            _ => Err(err),
        }
    }
}

/// Builds the variant from no fields at all, so every field takes its default; a variant
/// with a required field is an error that shows how to write it.
fn fill_defaults<'de, V: Visitor<'de>, E: de::Error>(
    name: &str,
    visitor: V,
) -> Result<V::Value, E> {
    visitor.visit_map(NoFields).map_err(|missing: Missing| {
        let field = missing.field.unwrap_or("…");
        E::custom(format_args!(
            "`{name}` cannot be written bare: {missing}; write it with its fields, e.g. \
             `{name}({field}: …)` in RON or `{{\"{name}\": {{\"{field}\": …}}}}` in JSON"
        ))
    })
}

/// A struct variant's field visitor, lent to the format, noting whether the format used it.
struct Watched<'s, V> {
    slot: &'s RefCell<Option<V>>,
    consulted: &'s Cell<bool>,
}

impl<V> Watched<'_, V> {
    /// The visitor, taken out for the format to drive.
    fn take<E: de::Error>(&self) -> Result<V, E> {
        self.consulted.set(true);
        self.slot
            .borrow_mut()
            .take()
            .ok_or_else(|| E::custom("a struct variant was read twice"))
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Watched<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.consulted.set(true);
        match self
            .slot
            .try_borrow()
            .ok()
            .as_ref()
            .and_then(|v| v.as_ref())
        {
            Some(visitor) => visitor.expecting(f),
            None => f.write_str("a struct variant"),
        }
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<V::Value, M::Error> {
        self.take()?.visit_map(map)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<V::Value, S::Error> {
        self.take()?.visit_seq(seq)
    }
}

/// An empty field list.
struct NoFields;

impl<'de> MapAccess<'de> for NoFields {
    type Error = Missing;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        _: K,
    ) -> Result<Option<K::Value>, Missing> {
        Ok(None)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, _: S) -> Result<S::Value, Missing> {
        Err(Missing {
            field: None,
            message: "a value without a field".into(),
        })
    }
}

/// Why a variant could not be built from no fields: usually a required field.
#[derive(Debug)]
struct Missing {
    field: Option<&'static str>,
    message: String,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Missing {}

impl de::Error for Missing {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Missing {
            field: None,
            message: message.to_string(),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Missing {
            field: Some(field),
            message: format!("missing field `{field}`"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "tests stop on failure"
    )]

    use super::super::{parse, Model};
    use super::Op;
    use std::path::Path;

    fn ron_ops(op: &str) -> Result<Vec<Op>, String> {
        let text = format!(
            "Model(name: \"m\", input: Input(shape: [4], min: 0.0, max: 1.0), \
             layers: [Layer(name: \"a\", op: {op}), Layer(name: \"b\", op: Flatten)])"
        );
        ops(parse(&text, false, Path::new("m.ron")))
    }

    fn json_ops(op: &str) -> Result<Vec<Op>, String> {
        let text = format!(
            "{{\"name\": \"m\", \"input\": {{\"shape\": [4], \"min\": 0.0, \"max\": 1.0}}, \
             \"layers\": [{{\"name\": \"a\", \"op\": {op}}}, {{\"name\": \"b\", \"op\": \"Flatten\"}}]}}"
        );
        ops(parse(&text, true, Path::new("m.json")))
    }

    fn ops(parsed: Result<Model, super::super::ModelError>) -> Result<Vec<Op>, String> {
        parsed
            .map(|m| m.layers.into_iter().map(|l| l.op).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn ops_with_all_default_fields_can_be_written_bare() {
        let batch_norm = Op::BatchNorm { eps: 1e-5 };
        let dropout = Op::Dropout { p: 0.5 };
        for (ron, json, want) in [
            ("BatchNorm", "\"BatchNorm\"", &batch_norm),
            ("BatchNorm()", "{\"BatchNorm\": {}}", &batch_norm),
            ("Dropout", "\"Dropout\"", &dropout),
            ("Dropout()", "{\"Dropout\": {}}", &dropout),
        ] {
            assert_eq!(ron_ops(ron).unwrap()[0], *want, "{ron}");
            assert_eq!(json_ops(json).unwrap()[0], *want, "{json}");
        }
        assert_eq!(
            ron_ops("Dropout(p: 0.25)").unwrap()[0],
            Op::Dropout { p: 0.25 }
        );
        assert_eq!(
            json_ops("{\"BatchNorm\": {\"eps\": 0.001}}").unwrap()[0],
            Op::BatchNorm { eps: 0.001 }
        );
        // The layer after a bare op is read as usual.
        assert_eq!(ron_ops("BatchNorm").unwrap()[1], Op::Flatten);
        assert_eq!(
            ron_ops("BatchNorm /* note */").unwrap()[0],
            Op::BatchNorm { eps: 1e-5 }
        );
    }

    #[test]
    fn a_bare_op_with_a_required_field_shows_the_spelling() {
        let want = "`Dense` cannot be written bare: missing field `out_features`; write it \
                    with its fields, e.g. `Dense(out_features: …)` in RON or \
                    `{\"Dense\": {\"out_features\": …}}` in JSON";
        let ron = ron_ops("Dense").unwrap_err();
        assert!(ron.ends_with(want), "{ron}");
        assert!(ron.starts_with("m.ron: line 1, column "), "{ron}");
        let json = json_ops("\"Dense\"").unwrap_err();
        assert!(json.ends_with(want), "{json}");
        assert!(json.starts_with("m.json: line 1, column "), "{json}");
    }

    #[test]
    fn content_that_is_there_is_still_checked() {
        let err = json_ops("{\"BatchNorm\": null}").unwrap_err();
        assert!(err.contains("invalid type: null"), "{err}");
        let err = json_ops("{\"Dropout\": 5}").unwrap_err();
        assert!(err.contains("invalid type"), "{err}");
        let err = ron_ops("Dropout(q: 0.1)").unwrap_err();
        assert!(err.contains("`q`"), "{err}");
        let err = json_ops("{\"Dropout\": {\"q\": 0.1}}").unwrap_err();
        assert!(err.contains("unknown field `q`"), "{err}");
        let err = ron_ops("Dropout[0.1]").unwrap_err();
        assert!(err.starts_with("m.ron: line 1, column "), "{err}");
    }

    #[test]
    fn unknown_ops_name_the_alternatives_as_before() {
        let err = ron_ops("Flaten").unwrap_err();
        assert!(
            err.contains("Unexpected variant named `Flaten` in enum `Op`"),
            "{err}"
        );
        let err = json_ops("\"Flaten\"").unwrap_err();
        assert!(err.contains("unknown variant `Flaten`"), "{err}");
    }
}
