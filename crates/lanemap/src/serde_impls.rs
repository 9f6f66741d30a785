//! `serde` support (feature `serde`): a map serializes as a map.

use crate::ShardedMap;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;

impl<K, V, S> Serialize for ShardedMap<K, V, S>
where
    K: Serialize,
    V: Serialize,
{
    /// Writes the entries one shard at a time (see the crate docs on iteration).
    fn serialize<Ser: Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        let mut out = serializer.serialize_map(None)?;
        let mut result = Ok(());
        self.for_each(|key, value| {
            if result.is_ok() {
                result = out.serialize_entry(key, value);
            }
        });
        result?;
        out.end()
    }
}

impl<'de, K, V, S> Deserialize<'de> for ShardedMap<K, V, S>
where
    K: Deserialize<'de> + Hash + Eq,
    V: Deserialize<'de>,
    S: BuildHasher + Default,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

/// Builds the map; `fn() -> T` keeps the visitor `Send` and `Sync` whatever `T` is.
type Makes<T> = PhantomData<fn() -> T>;

struct MapVisitor<K, V, S>(Makes<ShardedMap<K, V, S>>);

impl<'de, K, V, S> Visitor<'de> for MapVisitor<K, V, S>
where
    K: Deserialize<'de> + Hash + Eq,
    V: Deserialize<'de>,
    S: BuildHasher + Default,
{
    type Value = ShardedMap<K, V, S>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let map = ShardedMap::with_capacity_and_hasher(
            access.size_hint().unwrap_or(0).min(1 << 16),
            S::default(),
        );
        while let Some((key, value)) = access.next_entry()? {
            map.insert(key, value);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use crate::ShardedMap;

    #[test]
    fn round_trips_through_json() {
        let map: ShardedMap<String, Vec<u32>> =
            (0..50).map(|i| (format!("k{i}"), vec![i, i + 1])).collect();
        let json = serde_json::to_string(&map).unwrap();
        let back: ShardedMap<String, Vec<u32>> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), 50);
        for i in 0..50 {
            assert_eq!(back.get(&format!("k{i}")), Some(vec![i, i + 1]));
        }
    }

    #[test]
    fn rejects_a_non_map() {
        let error = serde_json::from_str::<ShardedMap<String, u32>>("[1, 2]").unwrap_err();
        assert!(error.to_string().contains("a map"), "{error}");
    }
}
