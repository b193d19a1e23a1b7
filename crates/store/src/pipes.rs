use chrono::{DateTime, Utc};
use serde::Serialize;
use sluice_model::{PipeSpec, PipeState, SecretBag};
use uuid::Uuid;

use crate::{Page, Result, Store, StoreError};

#[derive(Debug, Clone)]
pub struct PipeRecord {
    pub id: Uuid,
    /// Without its secrets: those live sealed in `sealed_secrets`.
    pub spec: PipeSpec,
    pub sealed_secrets: Option<Vec<u8>>,
    pub state: PipeState,
    pub generation: i64,
    pub version: i64,
    pub ready_replicas: i32,
    /// The autoscaler's replica count; `None` until it first decides (see
    /// `desired_replicas`).
    pub autoscaled_replicas: Option<i32>,
    /// When the autoscaler last changed the count: its cooldowns run from here.
    pub autoscaled_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub state_changed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventLevel {
    Info,
    Warning,
    Error,
}

impl EventLevel {
    fn as_str(self) -> &'static str {
        match self {
            EventLevel::Info => "info",
            EventLevel::Warning => "warning",
            EventLevel::Error => "error",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "error" => EventLevel::Error,
            "warning" => EventLevel::Warning,
            _ => EventLevel::Info,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub level: EventLevel,
    /// A stable machine-readable kind, e.g. `state_changed`.
    pub kind: &'static str,
    pub message: String,
}

impl NewEvent {
    pub fn info(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            level: EventLevel::Info,
            kind,
            message: message.into(),
        }
    }

    pub fn warning(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            level: EventLevel::Warning,
            kind,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EventRecord {
    pub id: i64,
    pub pipe_id: Uuid,
    pub at: DateTime<Utc>,
    pub level: EventLevel,
    pub kind: String,
    pub message: String,
}

struct EventRow {
    id: i64,
    pipe_id: Uuid,
    at: DateTime<Utc>,
    level: String,
    kind: String,
    message: String,
}

impl From<EventRow> for EventRecord {
    fn from(r: EventRow) -> Self {
        EventRecord {
            id: r.id,
            pipe_id: r.pipe_id,
            at: r.at,
            level: EventLevel::parse(&r.level),
            kind: r.kind,
            message: r.message,
        }
    }
}

/// A change to a pipe, applied only if nobody changed it in between.
pub struct PipeUpdate {
    /// The new spec, with its secrets in place; `None` keeps the stored one.
    pub spec: Option<PipeSpec>,
    pub state: PipeState,
    /// Whether the change affects the data path, so replicas must restart.
    pub bump_generation: bool,
    /// Forget the autoscaler's count: the user set `replicas` themselves.
    pub reset_autoscaled_replicas: bool,
    pub event: NewEvent,
}

struct PipeRow {
    id: Uuid,
    spec: serde_json::Value,
    secrets: Option<Vec<u8>>,
    state: String,
    generation: i64,
    version: i64,
    ready_replicas: i32,
    autoscaled_replicas: Option<i32>,
    autoscaled_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    last_error_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    state_changed_at: DateTime<Utc>,
}

impl TryFrom<PipeRow> for PipeRecord {
    type Error = StoreError;

    fn try_from(row: PipeRow) -> Result<Self> {
        let corrupt = |reason: String| StoreError::Corrupt {
            what: "pipe",
            id: row.id.to_string(),
            reason,
        };
        let spec = serde_json::from_value(row.spec.clone()).map_err(|e| corrupt(e.to_string()))?;
        let state = PipeState::parse(&row.state)
            .ok_or_else(|| corrupt(format!("unknown state {:?}", row.state)))?;
        Ok(PipeRecord {
            id: row.id,
            spec,
            sealed_secrets: row.secrets,
            state,
            generation: row.generation,
            version: row.version,
            ready_replicas: row.ready_replicas,
            autoscaled_replicas: row.autoscaled_replicas,
            autoscaled_at: row.autoscaled_at,
            last_error: row.last_error,
            last_error_at: row.last_error_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            state_changed_at: row.state_changed_at,
        })
    }
}

fn pipe_context(id: Uuid) -> Vec<u8> {
    format!("pipe:{id}").into_bytes()
}

impl PipeRecord {
    /// How many replicas should run while the pipe is live.
    pub fn desired_replicas(&self) -> u32 {
        let autoscaled = self.autoscaled_replicas.and_then(|n| u32::try_from(n).ok());
        self.spec.scaling.replicas_now(autoscaled)
    }

    pub fn secrets(&self, store: &Store) -> Result<SecretBag> {
        Ok(store
            .cipher
            .open_bag(&pipe_context(self.id), self.sealed_secrets.as_deref())?)
    }

    /// The spec with its secrets filled in, for those who connect to the
    /// source (workers, and the clean-up when a pipe is removed).
    pub fn opened_spec(&self, store: &Store) -> Result<PipeSpec> {
        let mut spec = self.spec.clone();
        self.secrets(store)?.fill(spec.secret_slots());
        Ok(spec)
    }
}

impl Store {
    fn seal_pipe(&self, id: Uuid, spec: &mut PipeSpec) -> (serde_json::Value, Option<Vec<u8>>) {
        let bag = SecretBag::take_from(spec.secret_slots());
        let sealed = self.cipher.seal_bag(&pipe_context(id), &bag);
        let json = serde_json::to_value(&*spec).expect("a pipe spec always serializes");
        (json, sealed)
    }

    pub async fn insert_pipe(
        &self,
        id: Uuid,
        mut spec: PipeSpec,
        state: PipeState,
        event: NewEvent,
    ) -> Result<PipeRecord> {
        let (json, sealed) = self.seal_pipe(id, &mut spec);
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query_as!(
            PipeRow,
            "INSERT INTO pipes (id, name, destination_id, spec, secrets, state)
             VALUES ($1, $2, $3, $4, $5, $6)
             RETURNING id, spec, secrets, state, generation, version, ready_replicas, autoscaled_replicas, autoscaled_at,
                       last_error, last_error_at, created_at, updated_at, state_changed_at",
            id,
            spec.name,
            spec.destination.destination_id,
            json,
            sealed,
            state.as_str()
        )
        .fetch_one(&mut *tx)
        .await?;
        insert_event(&mut tx, id, &event).await?;
        tx.commit().await?;
        row.try_into()
    }

    pub async fn pipe(&self, id: Uuid) -> Result<Option<PipeRecord>> {
        sqlx::query_as!(
            PipeRow,
            "SELECT id, spec, secrets, state, generation, version, ready_replicas, autoscaled_replicas, autoscaled_at,
                    last_error, last_error_at, created_at, updated_at, state_changed_at
             FROM pipes WHERE id = $1",
            id
        )
        .fetch_optional(&self.pool)
        .await?
        .map(TryInto::try_into)
        .transpose()
    }

    pub async fn list_pipes(
        &self,
        limit: i64,
        after: Option<Uuid>,
    ) -> Result<Page<PipeRecord, Uuid>> {
        let rows = sqlx::query_as!(
            PipeRow,
            "SELECT id, spec, secrets, state, generation, version, ready_replicas, autoscaled_replicas, autoscaled_at,
                    last_error, last_error_at, created_at, updated_at, state_changed_at
             FROM pipes WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2",
            after,
            limit + 1
        )
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<Vec<PipeRecord>>>()?;
        Ok(Page::from_rows(items, limit, |p| p.id))
    }

    pub async fn pipes_in_state(&self, state: PipeState) -> Result<Vec<PipeRecord>> {
        let rows = sqlx::query_as!(
            PipeRow,
            "SELECT id, spec, secrets, state, generation, version, ready_replicas, autoscaled_replicas, autoscaled_at,
                    last_error, last_error_at, created_at, updated_at, state_changed_at
             FROM pipes WHERE state = $1 ORDER BY id",
            state.as_str()
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Applies `update` if the pipe is still at `expected_version`, with its
    /// event, atomically. `None` when the version moved (or the pipe is gone).
    pub async fn update_pipe(
        &self,
        id: Uuid,
        expected_version: i64,
        update: PipeUpdate,
    ) -> Result<Option<PipeRecord>> {
        let mut tx = self.pool.begin().await?;
        let generation_step = i64::from(update.bump_generation);
        let row = match update.spec {
            Some(mut spec) => {
                let (json, sealed) = self.seal_pipe(id, &mut spec);
                sqlx::query_as!(
                    PipeRow,
                    "UPDATE pipes SET name = $3, spec = $4, secrets = $5, state = $6,
                         generation = generation + $7, version = version + 1, updated_at = now(),
                         autoscaled_replicas = CASE WHEN $8 THEN NULL ELSE autoscaled_replicas END,
                         state_changed_at = CASE WHEN state = $6 THEN state_changed_at ELSE now() END
                     WHERE id = $1 AND version = $2
                     RETURNING id, spec, secrets, state, generation, version, ready_replicas, autoscaled_replicas, autoscaled_at,
                               last_error, last_error_at, created_at, updated_at, state_changed_at",
                    id,
                    expected_version,
                    spec.name,
                    json,
                    sealed,
                    update.state.as_str(),
                    generation_step,
                    update.reset_autoscaled_replicas
                )
                .fetch_optional(&mut *tx)
                .await?
            }
            None => {
                sqlx::query_as!(
                    PipeRow,
                    "UPDATE pipes SET state = $3, generation = generation + $4,
                         version = version + 1, updated_at = now(),
                         state_changed_at = CASE WHEN state = $3 THEN state_changed_at ELSE now() END
                     WHERE id = $1 AND version = $2
                     RETURNING id, spec, secrets, state, generation, version, ready_replicas, autoscaled_replicas, autoscaled_at,
                               last_error, last_error_at, created_at, updated_at, state_changed_at",
                    id,
                    expected_version,
                    update.state.as_str(),
                    generation_step
                )
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        let Some(row) = row else {
            return Ok(None);
        };
        insert_event(&mut tx, id, &update.event).await?;
        tx.commit().await?;
        row.try_into().map(Some)
    }

    /// Removes the pipe if it is still at `expected_version`; its events go
    /// with it.
    pub async fn delete_pipe(&self, id: Uuid, expected_version: i64) -> Result<bool> {
        let done = sqlx::query!(
            "DELETE FROM pipes WHERE id = $1 AND version = $2",
            id,
            expected_version
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_pipe_event(&self, pipe_id: Uuid, event: &NewEvent) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_event(&mut tx, pipe_id, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Events newest first; `before` continues from the last id of a page.
    pub async fn pipe_events(
        &self,
        pipe_id: Uuid,
        limit: i64,
        before: Option<i64>,
    ) -> Result<Page<EventRecord, i64>> {
        let rows = sqlx::query_as!(
            EventRow,
            "SELECT id, pipe_id, at, level, kind, message FROM pipe_events
             WHERE pipe_id = $1 AND ($2::bigint IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3",
            pipe_id,
            before,
            limit + 1
        )
        .fetch_all(&self.pool)
        .await?;
        let items = rows.into_iter().map(EventRecord::from).collect();
        Ok(Page::from_rows(items, limit, |e| e.id))
    }

    /// The newest event of a kind (e.g. the last scheduling decision).
    pub async fn latest_pipe_event(
        &self,
        pipe_id: Uuid,
        kinds: &[&str],
    ) -> Result<Option<EventRecord>> {
        let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        let row = sqlx::query_as!(
            EventRow,
            "SELECT id, pipe_id, at, level, kind, message FROM pipe_events
             WHERE pipe_id = $1 AND kind = ANY($2) ORDER BY id DESC LIMIT 1",
            pipe_id,
            &kinds
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(EventRecord::from))
    }

    pub async fn pipe_counts_by_state(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query!(
            r#"SELECT state, count(*) AS "count!" FROM pipes GROUP BY state ORDER BY state"#
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.state, r.count)).collect())
    }
}

pub(crate) async fn insert_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    pipe_id: Uuid,
    event: &NewEvent,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO pipe_events (pipe_id, level, kind, message) VALUES ($1, $2, $3, $4)",
        pipe_id,
        event.level.as_str(),
        event.kind,
        event.message
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
