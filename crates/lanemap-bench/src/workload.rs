//! Workloads: an operation mix, a prefill level and a key distribution.

use serde::Serialize;
use std::fmt;

/// The share of each operation, in percent; the four add up to 100.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Mix {
    /// Lookups.
    pub get: f64,
    /// Inserts (of a key absent from the table while the thread has one).
    pub insert: f64,
    /// Removals (of a present key while the thread has one).
    pub remove: f64,
    /// Read-modify-writes of a value in place.
    pub update: f64,
}

impl Mix {
    /// Parses `get=90,insert=5,remove=5` (operations left out are 0; the shares must add up to
    /// 100).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut mix = Mix {
            get: 0.0,
            insert: 0.0,
            remove: 0.0,
            update: 0.0,
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, share) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not of the form op=percent"))?;
            let share: f64 = share
                .trim()
                .parse()
                .map_err(|_| format!("`{share}` in `{part}` is not a number"))?;
            if !(0.0..=100.0).contains(&share) {
                return Err(format!("`{part}`: a share must be between 0 and 100"));
            }
            let slot = match name.trim() {
                "get" | "read" => &mut mix.get,
                "insert" => &mut mix.insert,
                "remove" | "delete" => &mut mix.remove,
                "update" => &mut mix.update,
                other => {
                    return Err(format!(
                        "unknown operation `{other}` (expected get, insert, remove or update)"
                    ));
                }
            };
            *slot += share;
        }
        let total = mix.get + mix.insert + mix.remove + mix.update;
        if (total - 100.0).abs() > 1e-6 {
            return Err(format!("the shares add up to {total}, not 100"));
        }
        Ok(mix)
    }

    /// The shares as an array in [`OpKind`](crate::stream::OpKind) order.
    pub fn shares(&self) -> [f64; 4] {
        [self.get, self.insert, self.remove, self.update]
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = ["get", "insert", "remove", "update"];
        let parts: Vec<String> = names
            .iter()
            .zip(self.shares())
            .filter(|(_, share)| *share > 0.0)
            .map(|(name, share)| format!("{name}={share}"))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// How keys are drawn for lookups and updates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Dist {
    /// Every key equally likely.
    Uniform,
    /// Key of rank `r` drawn with probability proportional to `1 / r^exponent`.
    Zipf {
        /// The exponent `s` (0.99 is the usual "hot keys" setting).
        exponent: f64,
    },
}

impl fmt::Display for Dist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dist::Uniform => f.write_str("uniform"),
            Dist::Zipf { exponent } => write!(f, "zipf {exponent}"),
        }
    }
}

/// A named operation mix with a prefill level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    /// Short name (`read-heavy`, `95/5`, `custom`, ...).
    pub name: String,
    /// The operation mix.
    pub mix: Mix,
    /// Fraction of the key space inserted before timing starts (0 = start empty, not presized).
    pub prefill: f64,
}

impl Workload {
    fn new(name: &str, get: f64, insert: f64, remove: f64, update: f64, prefill: f64) -> Self {
        Self {
            name: name.into(),
            mix: Mix {
                get,
                insert,
                remove,
                update,
            },
            prefill,
        }
    }

    /// The conc-map-bench presets, so figures compare with published ones.
    pub fn presets() -> Vec<Self> {
        vec![
            Self::new("read-heavy", 98.0, 1.0, 1.0, 0.0, 0.75),
            Self::new("exchange", 10.0, 40.0, 40.0, 10.0, 0.75),
            Self::new("rapid-grow", 5.0, 80.0, 5.0, 10.0, 0.0),
        ]
    }

    /// The read/write gradients service owners quote: `r/w` means r% gets and w% writes, the
    /// writes being half updates and a quarter each inserts and removes (so the table keeps its
    /// size), with a 75% prefill.
    pub fn gradients() -> Vec<Self> {
        [99.0, 95.0, 90.0, 75.0, 50.0]
            .into_iter()
            .map(Self::gradient)
            .collect()
    }

    /// The gradient with `read` percent gets (see [`gradients`](Self::gradients)).
    pub fn gradient(read: f64) -> Self {
        let write = 100.0 - read;
        Self::new(
            &format!("{read}/{write}"),
            read,
            write / 4.0,
            write / 4.0,
            write / 2.0,
            0.75,
        )
    }

    /// Whether the table starts empty and grows during the run.
    pub fn grows(&self) -> bool {
        self.prefill == 0.0
    }

    /// Looks a workload up by name: a preset, a gradient (`95/5`, or `read-95`), or a group
    /// (`presets`, `gradients`, `all`).
    pub fn by_name(name: &str) -> Result<Vec<Self>, String> {
        let all: Vec<Self> = Self::presets()
            .into_iter()
            .chain(Self::gradients())
            .collect();
        match name {
            "presets" => return Ok(Self::presets()),
            "gradients" => return Ok(Self::gradients()),
            "all" => return Ok(all),
            _ => {}
        }
        let wanted = name.strip_prefix("read-").map_or(name.to_string(), |read| {
            read.parse::<f64>()
                .map_or(name.to_string(), |r| format!("{r}/{}", 100.0 - r))
        });
        all.into_iter()
            .find(|w| w.name == wanted)
            .map(|w| vec![w])
            .ok_or_else(|| {
                format!(
                    "unknown workload `{name}` (expected read-heavy, exchange, rapid-grow, 99/1, \
                 95/5, 90/10, 75/25, 50/50, presets, gradients or all)"
                )
            })
    }
}

/// One measured configuration of keys: a workload, a key distribution and a key count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Case {
    /// The mix and prefill.
    pub workload: Workload,
    /// How lookups and updates pick keys.
    pub dist: Dist,
    /// The table size: the key space of a prefilled workload, or the number of entries a
    /// growing workload ends with.
    pub keys: usize,
}

impl Case {
    /// The label used in reports and file names' source: `read-heavy · zipf 0.99 · 1048576 keys`.
    pub fn label(&self) -> String {
        format!(
            "{} · {} · {} keys",
            self.workload.name, self.dist, self.keys
        )
    }

    /// A file-name-safe version of the label.
    pub fn slug(&self) -> String {
        let dist = match self.dist {
            Dist::Uniform => "uniform".to_string(),
            Dist::Zipf { exponent } => format!("zipf{exponent}"),
        };
        format!("{}-{dist}-{}", self.workload.name, self.keys)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_custom_mix() {
        let mix = Mix::parse("get=90,insert=5,remove=5").unwrap();
        assert_eq!(
            mix,
            Mix {
                get: 90.0,
                insert: 5.0,
                remove: 5.0,
                update: 0.0
            }
        );
        assert_eq!(mix.to_string(), "get=90,insert=5,remove=5");
    }

    #[test]
    fn rejects_bad_mixes() {
        assert!(Mix::parse("get=90,insert=5").unwrap_err().contains("95"));
        assert!(
            Mix::parse("get=90,upsert=10")
                .unwrap_err()
                .contains("upsert")
        );
        assert!(Mix::parse("get=ninety").is_err());
        assert!(Mix::parse("get").is_err());
    }

    #[test]
    fn finds_workloads_by_name() {
        assert_eq!(Workload::by_name("presets").unwrap().len(), 3);
        assert_eq!(Workload::by_name("all").unwrap().len(), 8);
        assert_eq!(Workload::by_name("95/5").unwrap()[0].mix.get, 95.0);
        assert_eq!(Workload::by_name("read-75").unwrap()[0].name, "75/25");
        assert!(Workload::by_name("write-heavy").is_err());
        let grow = &Workload::by_name("rapid-grow").unwrap()[0];
        assert!(grow.grows());
    }
}
