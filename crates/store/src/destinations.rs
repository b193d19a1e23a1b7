use chrono::{DateTime, Utc};
use sluice_model::{DestinationSpec, SecretBag};
use uuid::Uuid;

use crate::{is_foreign_key_violation, Page, Result, Store, StoreError};

#[derive(Debug, Clone)]
pub struct DestinationRecord {
    pub id: Uuid,
    /// Without its password: that lives sealed in `sealed_secrets`.
    pub spec: DestinationSpec,
    pub sealed_secrets: Option<Vec<u8>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

struct DestinationRow {
    id: Uuid,
    spec: serde_json::Value,
    secrets: Option<Vec<u8>>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<DestinationRow> for DestinationRecord {
    type Error = StoreError;

    fn try_from(row: DestinationRow) -> Result<Self> {
        let spec = serde_json::from_value(row.spec).map_err(|e| StoreError::Corrupt {
            what: "destination",
            id: row.id.to_string(),
            reason: e.to_string(),
        })?;
        Ok(DestinationRecord {
            id: row.id,
            spec,
            sealed_secrets: row.secrets,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

pub(crate) fn destination_context(id: Uuid) -> Vec<u8> {
    format!("destination:{id}").into_bytes()
}

impl DestinationRecord {
    /// The stored secrets, opened.
    pub fn secrets(&self, store: &Store) -> Result<SecretBag> {
        Ok(store.cipher.open_bag(
            &destination_context(self.id),
            self.sealed_secrets.as_deref(),
        )?)
    }
}

impl Store {
    /// Seals the spec's secrets (taking them out of it) and returns the
    /// JSON document to store and the sealed bag.
    fn seal_destination(
        &self,
        id: Uuid,
        spec: &mut DestinationSpec,
    ) -> (serde_json::Value, Option<Vec<u8>>) {
        let bag = SecretBag::take_from(spec.secret_slots());
        let sealed = self.cipher.seal_bag(&destination_context(id), &bag);
        let json = serde_json::to_value(&*spec).expect("a destination spec always serializes");
        (json, sealed)
    }

    pub async fn insert_destination(
        &self,
        id: Uuid,
        mut spec: DestinationSpec,
    ) -> Result<DestinationRecord> {
        let (json, sealed) = self.seal_destination(id, &mut spec);
        sqlx::query_as!(
            DestinationRow,
            "INSERT INTO destinations (id, name, spec, secrets) VALUES ($1, $2, $3, $4)
             RETURNING id, spec, secrets, version, created_at, updated_at",
            id,
            spec.name,
            json,
            sealed
        )
        .fetch_one(&self.pool)
        .await?
        .try_into()
    }

    pub async fn destination(&self, id: Uuid) -> Result<Option<DestinationRecord>> {
        sqlx::query_as!(
            DestinationRow,
            "SELECT id, spec, secrets, version, created_at, updated_at FROM destinations WHERE id = $1",
            id
        )
        .fetch_optional(&self.pool)
        .await?
        .map(TryInto::try_into)
        .transpose()
    }

    pub async fn list_destinations(
        &self,
        limit: i64,
        after: Option<Uuid>,
    ) -> Result<Page<DestinationRecord, Uuid>> {
        let rows = sqlx::query_as!(
            DestinationRow,
            "SELECT id, spec, secrets, version, created_at, updated_at FROM destinations
             WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2",
            after,
            limit + 1
        )
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<Vec<DestinationRecord>>>()?;
        Ok(Page::from_rows(items, limit, |d| d.id))
    }

    /// Replaces the spec if the stored version is still `expected_version`;
    /// `None` when it changed in between (or the row is gone).
    pub async fn update_destination(
        &self,
        id: Uuid,
        expected_version: i64,
        mut spec: DestinationSpec,
    ) -> Result<Option<DestinationRecord>> {
        let (json, sealed) = self.seal_destination(id, &mut spec);
        sqlx::query_as!(
            DestinationRow,
            "UPDATE destinations SET name = $3, spec = $4, secrets = $5,
                 version = version + 1, updated_at = now()
             WHERE id = $1 AND version = $2
             RETURNING id, spec, secrets, version, created_at, updated_at",
            id,
            expected_version,
            spec.name,
            json,
            sealed
        )
        .fetch_optional(&self.pool)
        .await?
        .map(TryInto::try_into)
        .transpose()
    }

    /// Deletes a destination no pipe uses; true when a row was deleted.
    pub async fn delete_destination(&self, id: Uuid) -> Result<bool> {
        match sqlx::query!("DELETE FROM destinations WHERE id = $1", id)
            .execute(&self.pool)
            .await
        {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(e) if is_foreign_key_violation(&e) => {
                let names: Vec<String> = sqlx::query_scalar!(
                    "SELECT name FROM pipes WHERE destination_id = $1 ORDER BY name LIMIT 5",
                    id
                )
                .fetch_all(&self.pool)
                .await?;
                Err(StoreError::Conflict(format!(
                    "the destination is used by pipes ({}); delete them first",
                    names.join(", ")
                )))
            }
            Err(e) => Err(e.into()),
        }
    }
}
