//! The corpus of one target: its seeds (fixtures read at run time plus built-in ones) and the
//! accepted inputs it grows, with the dictionary harvested from the seeds.
use std::path::Path;

use serde_json::Value;

use crate::mutate::{harvest_keys, shrink_arrays, InputKind};
use crate::rng::Rng;
use crate::targets::Target;

/// Most entries a corpus holds; beyond it an accepted input replaces a grown (non-seed) one.
const CAPACITY: usize = 1_000;
/// Longest accepted input kept in the corpus (longer ones are run, not kept: they slow every run).
pub const MAX_KEPT_LEN: usize = 16 * 1024;

/// Inputs to mutate.
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    /// Every entry, seeds first.
    pub entries: Vec<Vec<u8>>,
    /// How many of `entries` are seeds.
    pub seeds: usize,
}

impl Corpus {
    /// Seeds for `target` from `fixtures` (its `fixture_dirs`) and its built-in seeds, and the
    /// dictionary for its mutator. Fails when a fixture directory the target names is missing.
    pub fn load(target: &Target, fixtures: &Path) -> Result<(Self, Vec<Vec<u8>>), String> {
        let mut entries = Vec::new();
        let mut dictionary: Vec<Vec<u8>> = target
            .tokens
            .iter()
            .map(|t| t.as_bytes().to_vec())
            .collect();
        for dir in target.fixture_dirs {
            let path = fixtures.join(dir);
            let listing = std::fs::read_dir(&path).map_err(|e| {
                format!(
                    "{}: fixtures {} not readable ({e}); pass --fixtures DIR",
                    target.name,
                    path.display()
                )
            })?;
            let mut files: Vec<_> = listing
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            for file in files {
                let bytes = std::fs::read(&file)
                    .map_err(|e| format!("{}: {} ({e})", target.name, file.display()))?;
                entries.push(bytes);
            }
        }
        entries.extend((target.seeds)());
        if target.kind == InputKind::Json {
            // Smaller copies (every array cut to 1 or 3 records) run many times faster than a
            // 1,000-record page and keep every field shape.
            let mut smaller = Vec::new();
            for entry in &entries {
                if let Ok(value) = serde_json::from_slice::<Value>(entry) {
                    harvest_keys(&value, &mut dictionary);
                    for keep in [1, 3] {
                        if let Ok(bytes) = serde_json::to_vec(&shrink_arrays(&value, keep)) {
                            smaller.push(bytes);
                        }
                    }
                }
            }
            entries.extend(smaller);
        }
        entries.sort();
        entries.dedup();
        if entries.is_empty() {
            entries.push(Vec::new());
        }
        let seeds = entries.len();
        Ok((Self { entries, seeds }, dictionary))
    }

    /// A random entry to mutate: the shorter of two random picks, so small inputs (fast to run)
    /// are mutated more often while every entry still gets its turn.
    pub fn pick(&self, rng: &mut Rng) -> &[u8] {
        let a = rng.pick(&self.entries).map_or(&[][..], Vec::as_slice);
        let b = rng.pick(&self.entries).map_or(&[][..], Vec::as_slice);
        if a.len() <= b.len() {
            a
        } else {
            b
        }
    }

    /// Keeps an accepted input: appended while there is room, else in place of a grown entry.
    pub fn add(&mut self, rng: &mut Rng, input: Vec<u8>) {
        if input.len() > MAX_KEPT_LEN {
            return;
        }
        if self.entries.len() < CAPACITY {
            self.entries.push(input);
        } else if self.entries.len() > self.seeds {
            let at = self.seeds + rng.below(self.entries.len() - self.seeds);
            self.entries[at] = input;
        }
    }
}
