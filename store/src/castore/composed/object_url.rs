//! Chunk store URLs to `object_store` stores.
//!
//! URLs are those `object_store` parses (`s3://BUCKET/PREFIX`, `gs://BUCKET/PREFIX`,
//! `az://CONTAINER/PREFIX`, `file:///DIR`), with the store's options as query parameters
//! (`?endpoint=http://127.0.0.1:9000&region=us-east-1`). Credentials come from the usual
//! environment variables (`AWS_ACCESS_KEY_ID`, `GOOGLE_SERVICE_ACCOUNT`, ...) and, for S3,
//! from the AWS profile files (`~/.aws/credentials` and `~/.aws/config`, or
//! `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE`; profile `AWS_PROFILE` or `default`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::ObjectStore;

use crate::castore::{backend_err, StoreError};

fn bad(url: &str, reason: &'static str) -> StoreError {
    StoreError::BadUrl {
        url: url.to_string(),
        reason,
    }
}

/// The store and the prefix inside it a chunk store URL names.
pub(crate) fn open(url: &str) -> Result<(Arc<dyn ObjectStore>, Path), StoreError> {
    let parsed = url::Url::parse(url).map_err(|_| bad(url, "not a URL"))?;
    let options: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut base = parsed.clone();
    base.set_query(None);
    if parsed.scheme() == "file" {
        let dir = PathBuf::from(parsed.path());
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Path {
            path: dir.clone(),
            source,
        })?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| backend_err("object store", e))?;
        return Ok((Arc::new(store), Path::default()));
    }
    if parsed.scheme() == "s3" || parsed.scheme() == "s3a" {
        return open_s3(url, &base, &options);
    }
    // GCS, Azure: `object_store` reads their options from the environment's variables,
    // overridden by the URL's query.
    let env = std::env::vars()
        .filter(|(k, _)| k.starts_with("GOOGLE_") || k.starts_with("AZURE_"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v));
    let (store, prefix) = object_store::parse_url_opts(&base, env.chain(options))
        .map_err(|e| backend_err("object store", e))?;
    Ok((Arc::from(store), prefix))
}

fn open_s3(
    url: &str,
    base: &url::Url,
    options: &[(String, String)],
) -> Result<(Arc<dyn ObjectStore>, Path), StoreError> {
    let mut builder = AmazonS3Builder::from_env().with_url(base.to_string());
    let mut has_key = std::env::var_os("AWS_ACCESS_KEY_ID").is_some();
    let mut has_region = std::env::var_os("AWS_REGION").is_some()
        || std::env::var_os("AWS_DEFAULT_REGION").is_some();
    for (k, v) in options {
        let key: AmazonS3ConfigKey = k
            .to_ascii_lowercase()
            .parse()
            .map_err(|_| bad(url, "unknown S3 option in the query"))?;
        match &key {
            AmazonS3ConfigKey::AccessKeyId => has_key = true,
            AmazonS3ConfigKey::Region => has_region = true,
            AmazonS3ConfigKey::Endpoint if v.starts_with("http://") => {
                builder = builder.with_allow_http(true);
            }
            _ => {}
        }
        builder = builder.with_config(key, v.clone());
    }
    let profile = AwsProfile::from_files();
    if !has_key {
        if let Some(id) = profile.get("aws_access_key_id") {
            builder = builder.with_access_key_id(id);
            if let Some(secret) = profile.get("aws_secret_access_key") {
                builder = builder.with_secret_access_key(secret);
            }
            if let Some(token) = profile.get("aws_session_token") {
                builder = builder.with_token(token);
            }
        }
    }
    if !has_region {
        if let Some(region) = profile.get("region") {
            builder = builder.with_region(region);
        }
    }
    let store = builder
        .build()
        .map_err(|e| backend_err("object store", e))?;
    let prefix = Path::from_url_path(base.path()).map_err(|e| backend_err("object store", e))?;
    Ok((Arc::new(store), prefix))
}

/// The settings of one AWS profile, from the credentials file and the config file.
#[derive(Debug, Default)]
pub(crate) struct AwsProfile {
    settings: HashMap<String, String>,
}

impl AwsProfile {
    /// The profile `AWS_PROFILE` (else `default`) from the files in their usual places.
    pub(crate) fn from_files() -> AwsProfile {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let file = |var: &str, rel: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(rel)))
        };
        let name = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
        let read = |p: Option<PathBuf>| p.and_then(|p| std::fs::read_to_string(p).ok());
        AwsProfile::parse(
            &name,
            read(file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials")).as_deref(),
            read(file("AWS_CONFIG_FILE", ".aws/config")).as_deref(),
        )
    }

    /// Profile `name` from the texts of a credentials file (sections `[name]`) and a
    /// config file (`[profile name]`, or `[default]`); the credentials file wins.
    pub(crate) fn parse(name: &str, credentials: Option<&str>, config: Option<&str>) -> Self {
        let mut settings = HashMap::new();
        let config_section = if name == "default" {
            "default".to_string()
        } else {
            format!("profile {name}")
        };
        for (text, section) in [(config, config_section.as_str()), (credentials, name)] {
            let Some(text) = text else { continue };
            let mut inside = false;
            for line in text.lines() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                    continue;
                }
                if let Some(head) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                    inside = head.trim() == section;
                    continue;
                }
                if inside {
                    if let Some((k, v)) = line.split_once('=') {
                        settings.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
            }
        }
        AwsProfile { settings }
    }

    /// A setting of the profile.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_files_are_read_as_aws_tools_do() {
        let creds = "[default]\naws_access_key_id = A\naws_secret_access_key=B\n\n[work]\naws_access_key_id = W\n";
        let config = "[default]\nregion = eu-west-1\n[profile work]\nregion = us-east-2\n# x\n";
        let p = AwsProfile::parse("default", Some(creds), Some(config));
        assert_eq!(p.get("aws_access_key_id"), Some("A"));
        assert_eq!(p.get("aws_secret_access_key"), Some("B"));
        assert_eq!(p.get("region"), Some("eu-west-1"));
        let w = AwsProfile::parse("work", Some(creds), Some(config));
        assert_eq!(w.get("aws_access_key_id"), Some("W"));
        assert_eq!(w.get("aws_secret_access_key"), None);
        assert_eq!(w.get("region"), Some("us-east-2"));
    }

    #[test]
    fn unknown_s3_options_are_refused() {
        let err = open("s3://bucket/prefix?no_such_option=1")
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("unknown S3 option")),
            "{err:?}"
        );
    }
}
