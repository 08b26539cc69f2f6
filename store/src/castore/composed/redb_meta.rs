//! [`RedbMeta`]: the metadata tables in an embedded `redb` database on this machine
//! (`--metadata redb:///FILE`), shared by the processes of this machine.

use std::path::Path;

use redb::{Database, ReadableDatabase};

use super::MetaStore;
use crate::castore::backend::{open_db, redb_keys_page, Table};
use crate::castore::{db_err, StoreError};

/// The tables in a `redb` file.
pub(crate) struct RedbMeta {
    db: Database,
}

impl RedbMeta {
    /// Opens (creating if needed) the database `file` and its tables.
    pub(crate) fn open(file: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Path {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let db = open_db(file)?;
        let txn = db.begin_write().map_err(db_err)?;
        for t in Table::ALL {
            txn.open_table(t.def()).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        Ok(RedbMeta { db })
    }
}

impl MetaStore for RedbMeta {
    fn get_many(&self, t: Table, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(t.def()).map_err(db_err)?;
        keys.iter()
            .map(|k| Ok(table.get(*k).map_err(db_err)?.map(|g| g.value().to_vec())))
            .collect()
    }

    fn commit(&self, entries: &[(Table, Vec<u8>, Vec<u8>)]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        for t in Table::ALL {
            let mut table = txn.open_table(t.def()).map_err(db_err)?;
            for (tt, k, v) in entries {
                if *tt == t {
                    table.insert(k.as_slice(), v.as_slice()).map_err(db_err)?;
                }
            }
        }
        txn.commit().map_err(db_err)
    }

    fn keys_page(
        &self,
        t: Table,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(t.def()).map_err(db_err)?;
        redb_keys_page(&table, after, limit)
    }
}
