//! The local Nix store's database (`/nix/var/nix/db/db.sqlite`), read-only: what Nix
//! knows of a valid path (NAR hash and size, references, deriver, signatures, content
//! address), so `tvix store copy --from nix:///nix/store` can import paths with their
//! metadata. The contents themselves are read from the store directory and their NAR hash
//! checked against the database's by the importer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use thiserror::Error;

use crate::hash::NixHash;
use crate::store_path::{StoreDir, StorePath};

/// Why the database could not be read.
#[derive(Debug, Error)]
pub enum NixDbError {
    /// SQLite failed (the file is missing, unreadable or not Nix's database).
    #[error("reading the Nix database '{db}': {source}")]
    Sqlite {
        /// The database file.
        db: String,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// A row holds something that is not what Nix writes.
    #[error("the Nix database has an invalid {what} '{value}' for '{path}'")]
    Invalid {
        /// The column.
        what: &'static str,
        /// Its value.
        value: String,
        /// The path of the row.
        path: String,
    },
    /// A path asked for is not valid in the Nix store.
    #[error("path '{0}' is not valid in the Nix store")]
    NotValid(String),
}

/// What the Nix database knows of one valid path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NixPathInfo {
    /// The path.
    pub path: StorePath,
    /// Its NAR hash.
    pub nar_hash: NixHash,
    /// Its NAR size.
    pub nar_size: u64,
    /// The paths it refers to.
    pub references: Vec<StorePath>,
    /// The derivation that built it, if known.
    pub deriver: Option<StorePath>,
    /// Its signatures (`NAME:BASE64`).
    pub signatures: Vec<String>,
    /// Its content address, if any.
    pub ca: Option<String>,
}

/// The database, open read-only.
pub struct NixDb {
    conn: Connection,
    file: String,
    dir: StoreDir,
}

impl NixDb {
    /// Opens `file` (read-only) for the store directory `dir`.
    pub fn open(file: &Path, dir: StoreDir) -> Result<NixDb, NixDbError> {
        let shown = file.display().to_string();
        let conn = Connection::open_with_flags(
            file,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| NixDbError::Sqlite {
            db: shown.clone(),
            source,
        })?;
        Ok(NixDb {
            conn,
            file: shown,
            dir,
        })
    }

    fn sqlite(&self, source: rusqlite::Error) -> NixDbError {
        NixDbError::Sqlite {
            db: self.file.clone(),
            source,
        }
    }

    /// What the database knows of `path`, or `None` if it is not valid.
    pub fn query(&self, path: &StorePath) -> Result<Option<NixPathInfo>, NixDbError> {
        let shown = self.dir.display(path);
        let row = self
            .conn
            .query_row(
                "SELECT id, hash, narSize, deriver, sigs, ca FROM ValidPaths WHERE path = ?1",
                [&shown],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.sqlite(e))?;
        let Some((id, hash, nar_size, deriver, sigs, ca)) = row else {
            return Ok(None);
        };
        let invalid = |what, value: String| NixDbError::Invalid {
            what,
            value,
            path: shown.clone(),
        };
        let nar_hash = NixHash::parse(&hash, None).map_err(|_| invalid("hash", hash.clone()))?;
        let nar_size = nar_size
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| invalid("narSize", format!("{nar_size:?}")))?;
        let deriver = match deriver.filter(|d| !d.is_empty()) {
            Some(d) => Some(
                self.dir
                    .parse_path(&d)
                    .map_err(|_| invalid("deriver", d.clone()))?,
            ),
            None => None,
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT v.path FROM Refs r JOIN ValidPaths v ON r.reference = v.id \
                 WHERE r.referrer = ?1",
            )
            .map_err(|e| self.sqlite(e))?;
        let refs: Vec<String> = stmt
            .query_map([id], |r| r.get::<_, String>(0))
            .map_err(|e| self.sqlite(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.sqlite(e))?;
        let references = refs
            .into_iter()
            .map(|r| self.dir.parse_path(&r).map_err(|_| invalid("reference", r)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(NixPathInfo {
            path: path.clone(),
            nar_hash,
            nar_size,
            references,
            deriver,
            signatures: sigs
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            ca: ca.filter(|c| !c.is_empty()),
        }))
    }

    /// The closure of `roots` (each must be valid), by path.
    pub fn closure(
        &self,
        roots: &[StorePath],
    ) -> Result<BTreeMap<StorePath, NixPathInfo>, NixDbError> {
        let mut out = BTreeMap::new();
        let mut todo: Vec<StorePath> = roots.to_vec();
        let mut seen: BTreeSet<StorePath> = todo.iter().cloned().collect();
        while let Some(p) = todo.pop() {
            let info = self
                .query(&p)?
                .ok_or_else(|| NixDbError::NotValid(self.dir.display(&p)))?;
            for r in &info.references {
                if seen.insert(r.clone()) {
                    todo.push(r.clone());
                }
            }
            out.insert(p, info);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database with Nix's schema (the tables and columns read here).
    fn fake_db(file: &Path) {
        let c = Connection::open(file).unwrap();
        c.execute_batch(
            "CREATE TABLE ValidPaths (id integer primary key autoincrement not null, \
             path text unique not null, hash text not null, registrationTime integer not null, \
             deriver text, narSize integer, ultimate integer, sigs text, ca text);
             CREATE TABLE Refs (referrer integer not null, reference integer not null, \
             primary key (referrer, reference));
             INSERT INTO ValidPaths VALUES (1, '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-lib', \
             'sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s', 0, NULL, 120, NULL, \
             'k:sig', NULL);
             INSERT INTO ValidPaths VALUES (2, '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-app', \
             'sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s', 0, \
             '/nix/store/cccccccccccccccccccccccccccccccc-app.drv', 200, NULL, NULL, '');
             INSERT INTO Refs VALUES (2, 1); INSERT INTO Refs VALUES (2, 2);",
        )
        .unwrap();
    }

    #[test]
    fn reads_paths_and_closures() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db.sqlite");
        fake_db(&file);
        let db = NixDb::open(&file, StoreDir::default()).unwrap();
        let app = StorePath::from_base_name("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-app").unwrap();
        let info = db.query(&app).unwrap().unwrap();
        assert_eq!(info.nar_size, 200);
        assert_eq!(info.references.len(), 2);
        assert_eq!(info.deriver.unwrap().name(), "app.drv");
        assert!(info.signatures.is_empty() && info.ca.is_none());
        let closure = db.closure(std::slice::from_ref(&app)).unwrap();
        assert_eq!(closure.len(), 2);
        let lib = closure.keys().find(|p| p.name() == "lib").unwrap();
        assert_eq!(closure[lib].signatures, ["k:sig"]);
        let missing = StorePath::from_base_name("dddddddddddddddddddddddddddddddd-x").unwrap();
        assert!(db.query(&missing).unwrap().is_none());
        assert!(matches!(
            db.closure(&[missing]),
            Err(NixDbError::NotValid(_))
        ));
    }

    #[test]
    fn a_missing_database_is_an_error() {
        let e = NixDb::open(Path::new("/nonexistent/db.sqlite"), StoreDir::default())
            .err()
            .unwrap();
        assert!(e.to_string().starts_with("reading the Nix database"), "{e}");
    }
}
