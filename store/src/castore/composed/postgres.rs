//! [`PgMeta`]: the metadata tables in PostgreSQL (`--metadata postgresql://USER@HOST:PORT/DB`),
//! shared by every `tvix store daemon` of a store.
//!
//! Tables `tvix_blobs`, `tvix_directories`, `tvix_pathinfos` (key, value) and
//! `tvix_chunks` (key, location, claimant), created on first use (under an advisory lock,
//! so daemons starting together do not race). A chunk row with no location is a claim:
//! the process named `owner` is uploading it. Processes hold a lease in `tvix_owners`,
//! renewed every [`LEASE`]`/3`; a claim whose owner's lease ran out is free to be taken,
//! so a crashed daemon's claims lapse after at most [`LEASE`]. Claims only avoid storing a
//! chunk twice: a location is committed only after its upload returned, whoever claimed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use super::runtime::Runtime;
use super::{Claim, MetaStore};
use crate::castore::backend::Table;
use crate::castore::{backend_err, B3Digest, StoreError};

/// How long a process's claims outlive its last sign of life.
pub(crate) const LEASE: Duration = Duration::from_secs(10);

/// Tries of a transaction that PostgreSQL aborted for a deadlock or a serialization
/// failure (two daemons writing the same rows at once).
const TRIES: usize = 5;

/// Serializes schema creation between processes.
const SCHEMA_LOCK: i64 = 0x7476_6978_7374; // "tvixst"

fn pg_err(e: tokio_postgres::Error) -> StoreError {
    backend_err("PostgreSQL", e)
}

fn table_name(t: Table) -> &'static str {
    match t {
        Table::Blobs => "tvix_blobs",
        Table::Directories => "tvix_directories",
        Table::PathInfos => "tvix_pathinfos",
        Table::Chunks => "tvix_chunks",
    }
}

/// Only rows with a value: chunk rows without one are claims.
fn has_value(t: Table) -> &'static str {
    match t {
        Table::Chunks => " AND value IS NOT NULL",
        _ => "",
    }
}

/// Whether PostgreSQL asks for the transaction to be tried again.
fn retryable(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

/// The tables in PostgreSQL.
pub(crate) struct PgMeta {
    rt: Runtime,
    /// Reads and single statements (pipelined by the client).
    reads: Arc<Client>,
    /// Transactions need a connection of their own.
    writes: Arc<tokio::sync::Mutex<Client>>,
    /// This process's name in `tvix_owners`.
    owner: String,
}

/// Connects to the server (the connection driven on `rt`).
async fn connect(config: tokio_postgres::Config) -> Result<Client, tokio_postgres::Error> {
    let (client, conn) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        // Ends when the client is dropped or the server goes away; requests then fail
        // with the connection's error.
        let _ = conn.await;
    });
    Ok(client)
}

impl PgMeta {
    /// Connects to the database a `postgresql://` URL names, creates the tables if
    /// needed and starts this process's lease.
    pub(crate) fn open(url: &str) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = url.parse().map_err(|_| StoreError::BadUrl {
            url: url.to_string(),
            reason: "not a PostgreSQL connection URL (postgresql://USER@HOST:PORT/DB)",
        })?;
        let rt = Runtime::new("tvix-postgres", 2)?;
        let owner = {
            let mut buf = [0u8; 8];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))?;
            format!("{}-{:016x}", std::process::id(), u64::from_le_bytes(buf))
        };
        let (reads, writes) = rt
            .run({
                let config = config.clone();
                let owner = owner.clone();
                async move {
                    let reads = connect(config.clone()).await?;
                    let mut writes = connect(config.clone()).await?;
                    create_schema(&mut writes).await?;
                    renew_lease(&reads, &owner).await?;
                    let beat = connect(config).await?;
                    let beat_owner = owner.clone();
                    tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(LEASE / 3).await;
                            // A missed renewal only lets others take our claims: they then
                            // upload those chunks too.
                            let _ = renew_lease(&beat, &beat_owner).await;
                        }
                    });
                    Ok::<_, tokio_postgres::Error>((reads, writes))
                }
            })?
            .map_err(pg_err)?;
        Ok(PgMeta {
            rt,
            reads: Arc::new(reads),
            writes: Arc::new(tokio::sync::Mutex::new(writes)),
            owner,
        })
    }
}

async fn create_schema(c: &mut Client) -> Result<(), tokio_postgres::Error> {
    let txn = c.transaction().await?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await?;
    txn.batch_execute(
        "CREATE TABLE IF NOT EXISTS tvix_blobs (key bytea PRIMARY KEY, value bytea NOT NULL);
         CREATE TABLE IF NOT EXISTS tvix_directories (key bytea PRIMARY KEY, value bytea NOT NULL);
         CREATE TABLE IF NOT EXISTS tvix_pathinfos (key bytea PRIMARY KEY, value bytea NOT NULL);
         CREATE TABLE IF NOT EXISTS tvix_chunks (key bytea PRIMARY KEY, value bytea, owner text);
         CREATE TABLE IF NOT EXISTS tvix_owners (id text PRIMARY KEY, alive_until timestamptz NOT NULL);",
    )
    .await?;
    txn.commit().await
}

async fn renew_lease(c: &Client, owner: &str) -> Result<(), tokio_postgres::Error> {
    let secs = LEASE.as_secs_f64();
    c.execute(
        "INSERT INTO tvix_owners (id, alive_until) VALUES ($1, now() + make_interval(secs => $2))
         ON CONFLICT (id) DO UPDATE SET alive_until = EXCLUDED.alive_until",
        &[&owner, &secs],
    )
    .await
    .map(|_| ())
}

impl MetaStore for PgMeta {
    fn get_many(&self, t: Table, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let wanted: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
        let client = self.reads.clone();
        let sql = format!(
            "SELECT key, value FROM {} WHERE key = ANY($1){}",
            table_name(t),
            has_value(t)
        );
        let rows = self
            .rt
            .run(async move { client.query(&sql, &[&wanted]).await })?
            .map_err(pg_err)?;
        let mut found: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for row in rows {
            let k: Vec<u8> = row.try_get(0).map_err(pg_err)?;
            let v: Vec<u8> = row.try_get(1).map_err(pg_err)?;
            found.insert(k, v);
        }
        Ok(keys.iter().map(|k| found.get(*k).cloned()).collect())
    }

    fn commit(&self, entries: &[(Table, Vec<u8>, Vec<u8>)]) -> Result<(), StoreError> {
        // Per table, each key once (the last value wins), in key order: two daemons
        // writing the same rows then lock them in the same order.
        let mut tables: BTreeMap<Table, BTreeMap<Vec<u8>, Vec<u8>>> = BTreeMap::new();
        for (t, k, v) in entries {
            tables.entry(*t).or_default().insert(k.clone(), v.clone());
        }
        let writes = self.writes.clone();
        self.rt
            .run(async move {
                let mut client = writes.lock().await;
                let mut tries = 0;
                loop {
                    tries += 1;
                    match commit_once(&mut client, &tables).await {
                        Err(e) if retryable(&e) && tries < TRIES => continue,
                        other => return other,
                    }
                }
            })?
            .map_err(pg_err)
    }

    fn keys_page(
        &self,
        t: Table,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let after: Vec<u8> = after.map(<[u8]>::to_vec).unwrap_or_default();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.reads.clone();
        let sql = format!(
            "SELECT key FROM {} WHERE key > $1{} ORDER BY key LIMIT $2",
            table_name(t),
            has_value(t)
        );
        let rows = self
            .rt
            .run(async move { client.query(&sql, &[&after, &limit]).await })?
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| r.try_get::<_, Vec<u8>>(0).map_err(pg_err))
            .collect()
    }

    fn claim_chunks(&self, ds: &[B3Digest]) -> Result<Vec<Claim>, StoreError> {
        let mut wanted: Vec<Vec<u8>> = ds.iter().map(|d| d.0.to_vec()).collect();
        wanted.sort();
        wanted.dedup();
        let client = self.reads.clone();
        let owner = self.owner.clone();
        let (ours, stored) = self
            .rt
            .run(async move {
                let mut tries = 0;
                let ours = loop {
                    tries += 1;
                    let res = client
                        .query(
                            "INSERT INTO tvix_chunks (key, owner) SELECT unnest($1::bytea[]), $2
                             ON CONFLICT (key) DO UPDATE SET owner = EXCLUDED.owner
                             WHERE tvix_chunks.value IS NULL
                               AND (tvix_chunks.owner = EXCLUDED.owner OR NOT EXISTS (
                                 SELECT 1 FROM tvix_owners o
                                 WHERE o.id = tvix_chunks.owner AND o.alive_until > now()))
                             RETURNING key",
                            &[&wanted, &owner],
                        )
                        .await;
                    match res {
                        Err(e) if retryable(&e) && tries < TRIES => continue,
                        other => break other?,
                    }
                };
                let stored = client
                    .query(
                        "SELECT key FROM tvix_chunks WHERE key = ANY($1) AND value IS NOT NULL",
                        &[&wanted],
                    )
                    .await?;
                Ok::<_, tokio_postgres::Error>((ours, stored))
            })?
            .map_err(pg_err)?;
        let mut state: BTreeMap<Vec<u8>, Claim> = BTreeMap::new();
        for row in stored {
            state.insert(row.try_get(0).map_err(pg_err)?, Claim::Stored);
        }
        for row in ours {
            state.insert(row.try_get(0).map_err(pg_err)?, Claim::Ours);
        }
        Ok(ds
            .iter()
            .map(|d| state.get(&d.0[..]).copied().unwrap_or(Claim::Theirs))
            .collect())
    }
}

async fn commit_once(
    client: &mut Client,
    tables: &BTreeMap<Table, BTreeMap<Vec<u8>, Vec<u8>>>,
) -> Result<(), tokio_postgres::Error> {
    let txn = client.transaction().await?;
    for (t, rows) in tables {
        let keys: Vec<&[u8]> = rows.keys().map(Vec::as_slice).collect();
        let values: Vec<&[u8]> = rows.values().map(Vec::as_slice).collect();
        let set = match t {
            // A committed location ends the claim.
            Table::Chunks => "value = EXCLUDED.value, owner = NULL",
            _ => "value = EXCLUDED.value",
        };
        let sql = format!(
            "INSERT INTO {} (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[])
             ON CONFLICT (key) DO UPDATE SET {set}",
            table_name(*t)
        );
        txn.execute(&sql, &[&keys, &values]).await?;
    }
    txn.commit().await
}

impl Drop for PgMeta {
    fn drop(&mut self) {
        // Our claims lapse at once (every chunk we claimed was committed or is garbage).
        let client = self.reads.clone();
        let owner = self.owner.clone();
        let _ = self.rt.run(async move {
            client
                .execute("DELETE FROM tvix_owners WHERE id = $1", &[&owner])
                .await
        });
    }
}
