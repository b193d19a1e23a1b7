use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Page, Result, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Developer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Developer => "developer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Viewer, Role::Developer, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub secret_hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub struct NewApiKey<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub secret_hash: &'a [u8],
}

struct KeyRow {
    id: String,
    name: String,
    role: String,
    secret_hash: Vec<u8>,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<KeyRow> for ApiKeyRecord {
    type Error = StoreError;

    fn try_from(row: KeyRow) -> Result<Self> {
        let role = Role::parse(&row.role).ok_or_else(|| StoreError::Corrupt {
            what: "api key",
            id: row.id.clone(),
            reason: format!("unknown role {:?}", row.role),
        })?;
        Ok(ApiKeyRecord {
            id: row.id,
            name: row.name,
            role,
            secret_hash: row.secret_hash,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        })
    }
}

impl Store {
    pub async fn insert_api_key(&self, key: NewApiKey<'_>) -> Result<ApiKeyRecord> {
        sqlx::query_as!(
            KeyRow,
            "INSERT INTO api_keys (id, name, role, secret_hash) VALUES ($1, $2, $3, $4)
             RETURNING id, name, role, secret_hash, created_at, last_used_at, revoked_at",
            key.id,
            key.name,
            key.role.as_str(),
            key.secret_hash,
        )
        .fetch_one(&self.pool)
        .await?
        .try_into()
    }

    /// Inserts the key unless one with this id exists; true when inserted.
    pub async fn insert_api_key_if_absent(&self, key: NewApiKey<'_>) -> Result<bool> {
        let inserted = sqlx::query!(
            "INSERT INTO api_keys (id, name, role, secret_hash) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING",
            key.id,
            key.name,
            key.role.as_str(),
            key.secret_hash,
        )
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    pub async fn count_api_keys(&self) -> Result<i64> {
        let count = sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM api_keys"#)
            .fetch_one(&self.pool)
            .await?;
        Ok(count)
    }

    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        sqlx::query_as!(
            KeyRow,
            "SELECT id, name, role, secret_hash, created_at, last_used_at, revoked_at
             FROM api_keys WHERE id = $1",
            id
        )
        .fetch_optional(&self.pool)
        .await?
        .map(TryInto::try_into)
        .transpose()
    }

    /// Records use at most once a minute, so authentication does not turn
    /// every read into a write.
    pub async fn touch_api_key(&self, id: &str) -> Result<()> {
        sqlx::query!(
            "UPDATE api_keys SET last_used_at = now()
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
            id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn list_api_keys(
        &self,
        limit: i64,
        after: Option<&str>,
    ) -> Result<Page<ApiKeyRecord, String>> {
        let rows = sqlx::query_as!(
            KeyRow,
            "SELECT id, name, role, secret_hash, created_at, last_used_at, revoked_at
             FROM api_keys WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2",
            after,
            limit + 1
        )
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<Vec<ApiKeyRecord>>>()?;
        Ok(Page::from_rows(items, limit, |k| k.id.clone()))
    }

    /// Revokes a key. Refuses to revoke the last active admin key, which
    /// would lock everyone out of key management. Revoking twice is a no-op.
    pub async fn revoke_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        let mut tx = self.pool.begin().await?;
        // Lock the active admin keys so two concurrent revocations cannot
        // both see "another admin remains".
        let admins: Vec<String> = sqlx::query_scalar!(
            "SELECT id FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL FOR UPDATE"
        )
        .fetch_all(&mut *tx)
        .await?;
        if admins.len() == 1 && admins[0] == id {
            return Err(StoreError::Conflict(
                "this is the last active admin key; create another admin key before revoking it"
                    .into(),
            ));
        }
        let row = sqlx::query_as!(
            KeyRow,
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
             RETURNING id, name, role, secret_hash, created_at, last_used_at, revoked_at",
            id
        )
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(TryInto::try_into).transpose()
    }
}
