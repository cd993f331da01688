//! The registry's records in SQLite: one table per record kind.
//!
//! Each row keeps the record's read form as JSON (`body`) next to the columns SQLite must index,
//! constrain or sort on (name, parent id, external id, times). Every write runs in one
//! transaction that checks its preconditions first, so a refused request changes nothing.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use jukebox_protocol::registry::ArtifactState;
use jukebox_protocol::registry::{
    FindQuery, ListPage, ListQuery, ModelArtifact, ModelArtifactCreate, ModelArtifactUpdate, ModelState, ModelVersion,
    ModelVersionCreate, ModelVersionUpdate, OrderBy, RegisteredModel, RegisteredModelCreate, RegisteredModelUpdate,
    SortOrder, MODEL_ARTIFACT_TYPE,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::RegistryError;

/// Items per page when a list request does not say.
const DEFAULT_PAGE_SIZE: i64 = 100;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS registered_models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    external_id TEXT UNIQUE,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS model_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    registered_model_id INTEGER NOT NULL REFERENCES registered_models(id),
    name TEXT NOT NULL,
    external_id TEXT UNIQUE,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (registered_model_id, name)
);
CREATE TABLE IF NOT EXISTS model_artifacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_version_id INTEGER REFERENCES model_versions(id),
    name TEXT,
    external_id TEXT UNIQUE,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (model_version_id, name)
);
";

/// The three record kinds, with what differs between their tables.
#[derive(Clone, Copy)]
enum Kind {
    RegisteredModel,
    ModelVersion,
    ModelArtifact,
}

impl Kind {
    fn table(self) -> &'static str {
        match self {
            Kind::RegisteredModel => "registered_models",
            Kind::ModelVersion => "model_versions",
            Kind::ModelArtifact => "model_artifacts",
        }
    }
    fn parent_column(self) -> Option<&'static str> {
        match self {
            Kind::RegisteredModel => None,
            Kind::ModelVersion => Some("registered_model_id"),
            Kind::ModelArtifact => Some("model_version_id"),
        }
    }
    fn noun(self) -> &'static str {
        match self {
            Kind::RegisteredModel => "registered model",
            Kind::ModelVersion => "model version",
            Kind::ModelArtifact => "model artifact",
        }
    }
}

/// A registered model with its versions and each version's artifacts, for the web page.
pub struct ModelTree {
    pub model: RegisteredModel,
    pub versions: Vec<(ModelVersion, Vec<ModelArtifact>)>,
}

/// The registry database. Not thread-safe by itself: the server keeps it behind a mutex.
pub struct RegistryStore {
    conn: Connection,
}

fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Ids are integers on disk and strings on the wire; text that is no integer names no record.
fn parse_id(kind: Kind, id: &str) -> Result<i64, RegistryError> {
    id.trim().parse().map_err(|_| RegistryError::NotFound(format!("{} with id {id:?} not found", kind.noun())))
}

fn require_non_empty(field: &str, value: &str) -> Result<(), RegistryError> {
    if value.trim().is_empty() {
        return Err(RegistryError::BadRequest(format!("field `{field}` must not be empty")));
    }
    Ok(())
}

fn to_body<T: Serialize>(record: &T) -> Result<String, RegistryError> {
    serde_json::to_string(record).map_err(RegistryError::Corrupt)
}

fn from_body<T: DeserializeOwned>(body: &str) -> Result<T, RegistryError> {
    serde_json::from_str(body).map_err(RegistryError::Corrupt)
}

fn get_body<T: DeserializeOwned>(conn: &Connection, kind: Kind, id: &str) -> Result<T, RegistryError> {
    let row_id = parse_id(kind, id)?;
    let body: Option<String> = conn
        .query_row(&format!("SELECT body FROM {} WHERE id = ?1", kind.table()), [row_id], |row| row.get(0))
        .optional()?;
    match body {
        Some(body) => from_body(&body),
        None => Err(RegistryError::NotFound(format!("{} with id {id:?} not found", kind.noun()))),
    }
}

fn put_body<T: Serialize>(
    tx: &Transaction<'_>,
    kind: Kind,
    id: i64,
    record: &T,
    update_time: i64,
) -> Result<(), RegistryError> {
    tx.execute(
        &format!("UPDATE {} SET body = ?1, update_time = ?2 WHERE id = ?3", kind.table()),
        params![to_body(record)?, update_time, id],
    )?;
    Ok(())
}

/// Refuses an external id already used by another record of the same kind.
fn check_external_id(
    tx: &Transaction<'_>,
    kind: Kind,
    external_id: Option<&str>,
    own_id: Option<i64>,
) -> Result<(), RegistryError> {
    let Some(external_id) = external_id else { return Ok(()) };
    let other: Option<i64> = tx
        .query_row(&format!("SELECT id FROM {} WHERE external_id = ?1", kind.table()), [external_id], |row| row.get(0))
        .optional()?;
    match other {
        Some(other) if Some(other) != own_id => Err(RegistryError::Conflict(format!(
            "a {} with externalId {external_id:?} already exists (id {other})",
            kind.noun()
        ))),
        _ => Ok(()),
    }
}

impl RegistryStore {
    /// Opens (creating if needed) the database file and its tables.
    pub fn open(path: &Path) -> Result<Self, RegistryError> {
        let open_error = |source| RegistryError::Open { path: path.to_owned(), source };
        let conn = Connection::open(path).map_err(open_error)?;
        conn.execute_batch("PRAGMA foreign_keys = ON;").map_err(open_error)?;
        conn.execute_batch(SCHEMA).map_err(open_error)?;
        Ok(Self { conn })
    }

    /// An in-memory database (for unit tests of the HTTP layer).
    pub fn open_in_memory() -> Result<Self, RegistryError> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn })
    }

    // --- registered models ---------------------------------------------------------------

    pub fn create_registered_model(&mut self, create: RegisteredModelCreate) -> Result<RegisteredModel, RegistryError> {
        require_non_empty("name", &create.name)?;
        let tx = self.conn.transaction()?;
        let existing: Option<i64> = tx
            .query_row("SELECT id FROM registered_models WHERE name = ?1", [&create.name], |row| row.get(0))
            .optional()?;
        if let Some(existing) = existing {
            return Err(RegistryError::Conflict(format!(
                "a registered model named {:?} already exists (id {existing})",
                create.name
            )));
        }
        check_external_id(&tx, Kind::RegisteredModel, create.external_id.as_deref(), None)?;
        let now = now_millis();
        tx.execute(
            "INSERT INTO registered_models (name, external_id, create_time, update_time, body) VALUES (?1, ?2, ?3, ?3, '{}')",
            params![create.name, create.external_id, now],
        )?;
        let id = tx.last_insert_rowid();
        let model = RegisteredModel {
            id: id.to_string(),
            name: create.name,
            description: create.description,
            external_id: create.external_id,
            owner: create.owner,
            state: Some(create.state.unwrap_or(ModelState::Live)),
            custom_properties: create.custom_properties,
            catalog: create.catalog,
            create_time_since_epoch: Some(now.to_string()),
            last_update_time_since_epoch: Some(now.to_string()),
        };
        put_body(&tx, Kind::RegisteredModel, id, &model, now)?;
        tx.commit()?;
        Ok(model)
    }

    pub fn get_registered_model(&self, id: &str) -> Result<RegisteredModel, RegistryError> {
        get_body(&self.conn, Kind::RegisteredModel, id)
    }

    pub fn update_registered_model(
        &mut self,
        id: &str,
        update: RegisteredModelUpdate,
    ) -> Result<RegisteredModel, RegistryError> {
        let tx = self.conn.transaction()?;
        let mut model: RegisteredModel = get_body(&tx, Kind::RegisteredModel, id)?;
        let row_id = parse_id(Kind::RegisteredModel, id)?;
        check_external_id(&tx, Kind::RegisteredModel, update.external_id.as_deref(), Some(row_id))?;
        let now = now_millis();
        if update.description.is_some() {
            model.description = update.description;
        }
        if update.external_id.is_some() {
            model.external_id = update.external_id;
        }
        if update.owner.is_some() {
            model.owner = update.owner;
        }
        if update.state.is_some() {
            model.state = update.state;
        }
        if let Some(properties) = update.custom_properties {
            model.custom_properties = properties;
        }
        model.last_update_time_since_epoch = Some(now.to_string());
        tx.execute("UPDATE registered_models SET external_id = ?1 WHERE id = ?2", params![model.external_id, row_id])?;
        put_body(&tx, Kind::RegisteredModel, row_id, &model, now)?;
        tx.commit()?;
        Ok(model)
    }

    pub fn find_registered_model(&self, query: &FindQuery) -> Result<RegisteredModel, RegistryError> {
        let (column, value) = match (&query.name, &query.external_id) {
            (Some(name), _) => ("name", name),
            (None, Some(external_id)) => ("external_id", external_id),
            (None, None) => {
                return Err(RegistryError::BadRequest(
                    "find a registered model by query parameter `name` or `externalId`".into(),
                ))
            }
        };
        let body: Option<String> = self
            .conn
            .query_row(&format!("SELECT body FROM registered_models WHERE {column} = ?1"), [value], |row| row.get(0))
            .optional()?;
        match body {
            Some(body) => from_body(&body),
            None => Err(RegistryError::NotFound(format!("no registered model with {column} {value:?}"))),
        }
    }

    pub fn list_registered_models(&self, query: &ListQuery) -> Result<ListPage<RegisteredModel>, RegistryError> {
        self.list(Kind::RegisteredModel, None, query)
    }

    // --- model versions ------------------------------------------------------------------

    /// Creates a version of the model `registered_model_id` (from the path, or else the body).
    pub fn create_model_version(
        &mut self,
        registered_model_id: Option<&str>,
        create: ModelVersionCreate,
    ) -> Result<ModelVersion, RegistryError> {
        require_non_empty("name", &create.name)?;
        let model_id = match (registered_model_id, create.registered_model_id.as_deref()) {
            (Some(path_id), Some(body_id)) if path_id != body_id => {
                return Err(RegistryError::BadRequest(format!(
                    "field `registeredModelId` ({body_id:?}) differs from the model id in the path ({path_id:?})"
                )))
            }
            (Some(id), _) | (None, Some(id)) => id.to_owned(),
            (None, None) => return Err(RegistryError::BadRequest("missing field `registeredModelId`".into())),
        };
        let tx = self.conn.transaction()?;
        let model: RegisteredModel = match get_body(&tx, Kind::RegisteredModel, &model_id) {
            // An id in the body that names no model is a bad field: the Model Registry API
            // documents 400/422 for POST /model_versions, no 404 (a path id stays 404).
            Err(RegistryError::NotFound(message)) if registered_model_id.is_none() => {
                return Err(RegistryError::BadRequest(format!("field `registeredModelId`: {message}")))
            }
            other => other?,
        };
        let model_row = parse_id(Kind::RegisteredModel, &model_id)?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM model_versions WHERE registered_model_id = ?1 AND name = ?2",
                params![model_row, create.name],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(existing) = existing {
            return Err(RegistryError::Conflict(format!(
                "model {:?} already has a version named {:?} (id {existing})",
                model.name, create.name
            )));
        }
        check_external_id(&tx, Kind::ModelVersion, create.external_id.as_deref(), None)?;
        let now = now_millis();
        tx.execute(
            "INSERT INTO model_versions (registered_model_id, name, external_id, create_time, update_time, body)
             VALUES (?1, ?2, ?3, ?4, ?4, '{}')",
            params![model_row, create.name, create.external_id, now],
        )?;
        let id = tx.last_insert_rowid();
        let version = ModelVersion {
            id: id.to_string(),
            name: create.name,
            registered_model_id: model.id,
            description: create.description,
            external_id: create.external_id,
            author: create.author,
            state: Some(create.state.unwrap_or(ModelState::Live)),
            custom_properties: create.custom_properties,
            create_time_since_epoch: Some(now.to_string()),
            last_update_time_since_epoch: Some(now.to_string()),
        };
        put_body(&tx, Kind::ModelVersion, id, &version, now)?;
        tx.commit()?;
        Ok(version)
    }

    pub fn get_model_version(&self, id: &str) -> Result<ModelVersion, RegistryError> {
        get_body(&self.conn, Kind::ModelVersion, id)
    }

    pub fn update_model_version(
        &mut self,
        id: &str,
        update: ModelVersionUpdate,
    ) -> Result<ModelVersion, RegistryError> {
        let tx = self.conn.transaction()?;
        let mut version: ModelVersion = get_body(&tx, Kind::ModelVersion, id)?;
        let row_id = parse_id(Kind::ModelVersion, id)?;
        check_external_id(&tx, Kind::ModelVersion, update.external_id.as_deref(), Some(row_id))?;
        let now = now_millis();
        if update.description.is_some() {
            version.description = update.description;
        }
        if update.external_id.is_some() {
            version.external_id = update.external_id;
        }
        if update.author.is_some() {
            version.author = update.author;
        }
        if update.state.is_some() {
            version.state = update.state;
        }
        if let Some(properties) = update.custom_properties {
            version.custom_properties = properties;
        }
        version.last_update_time_since_epoch = Some(now.to_string());
        tx.execute("UPDATE model_versions SET external_id = ?1 WHERE id = ?2", params![version.external_id, row_id])?;
        put_body(&tx, Kind::ModelVersion, row_id, &version, now)?;
        tx.commit()?;
        Ok(version)
    }

    pub fn find_model_version(&self, query: &FindQuery) -> Result<ModelVersion, RegistryError> {
        self.find_child(Kind::ModelVersion, query)
    }

    /// Versions of one model (`registered_model_id`), or of all models.
    pub fn list_model_versions(
        &self,
        registered_model_id: Option<&str>,
        query: &ListQuery,
    ) -> Result<ListPage<ModelVersion>, RegistryError> {
        if let Some(id) = registered_model_id {
            self.get_registered_model(id)?;
        }
        self.list(Kind::ModelVersion, registered_model_id, query)
    }

    // --- model artifacts -----------------------------------------------------------------

    /// `POST /model_versions/{id}/artifacts`: with an `id` in the body, updates that artifact
    /// (answering `false`: not created); without one, creates an artifact of the version.
    ///
    /// The artifact must belong to the version in the path: otherwise anyone could rewrite
    /// another version's `uri` (which `jukebox serve --registry` downloads from) through a
    /// version they own. A mismatch answers 404 and changes nothing.
    pub fn upsert_version_artifact(
        &mut self,
        model_version_id: &str,
        create: ModelArtifactCreate,
    ) -> Result<(ModelArtifact, bool), RegistryError> {
        check_artifact_type(&create.artifact_type)?;
        if let Some(id) = &create.id {
            let _: ModelVersion = get_body(&self.conn, Kind::ModelVersion, model_version_id)?;
            let version_row = parse_id(Kind::ModelVersion, model_version_id)?;
            let artifact = self.get_model_artifact(id)?;
            let artifact_row = parse_id(Kind::ModelArtifact, &artifact.id)?;
            let owner: Option<i64> = self.conn.query_row(
                "SELECT model_version_id FROM model_artifacts WHERE id = ?1",
                [artifact_row],
                |row| row.get(0),
            )?;
            if owner != Some(version_row) {
                return Err(RegistryError::NotFound(format!(
                    "model version {model_version_id:?} has no artifact with id {id:?} (it belongs to another version, or to none); \
                     update it under its own version"
                )));
            }
            let f = create.fields;
            let update = ModelArtifactUpdate {
                description: f.description,
                external_id: f.external_id,
                uri: f.uri,
                state: f.state,
                model_format_name: f.model_format_name,
                model_format_version: f.model_format_version,
                storage_key: f.storage_key,
                storage_path: f.storage_path,
                service_account_name: f.service_account_name,
                custom_properties: Some(f.custom_properties).filter(|p| !p.is_empty()),
            };
            return Ok((self.update_model_artifact(&artifact.id, update)?, false));
        }
        Ok((self.create_artifact(Some(model_version_id), create)?, true))
    }

    /// Creates an artifact, attached to a version or (`None`) standing alone.
    pub fn create_artifact(
        &mut self,
        model_version_id: Option<&str>,
        create: ModelArtifactCreate,
    ) -> Result<ModelArtifact, RegistryError> {
        check_artifact_type(&create.artifact_type)?;
        let tx = self.conn.transaction()?;
        let version_row = match model_version_id {
            Some(id) => {
                let _: ModelVersion = get_body(&tx, Kind::ModelVersion, id)?;
                Some(parse_id(Kind::ModelVersion, id)?)
            }
            None => None,
        };
        if let (Some(version_row), Some(name)) = (version_row, &create.fields.name) {
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT id FROM model_artifacts WHERE model_version_id = ?1 AND name = ?2",
                    params![version_row, name],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(existing) = existing {
                return Err(RegistryError::Conflict(format!(
                    "model version {version_row} already has an artifact named {name:?} (id {existing})"
                )));
            }
        }
        check_external_id(&tx, Kind::ModelArtifact, create.fields.external_id.as_deref(), None)?;
        let now = now_millis();
        tx.execute(
            "INSERT INTO model_artifacts (model_version_id, name, external_id, create_time, update_time, body)
             VALUES (?1, ?2, ?3, ?4, ?4, '{}')",
            params![version_row, create.fields.name, create.fields.external_id, now],
        )?;
        let id = tx.last_insert_rowid();
        let mut fields = create.fields;
        fields.state.get_or_insert(ArtifactState::Unknown);
        if fields.name.is_none() {
            // Clients (the Python one among them) expect every artifact to have a name. The
            // automatic one may already be taken by a named artifact: add a suffix until free.
            let mut name = format!("artifact-{id}");
            for attempt in 2.. {
                let taken: Option<i64> = tx
                    .query_row(
                        "SELECT id FROM model_artifacts WHERE model_version_id IS ?1 AND name = ?2",
                        params![version_row, name],
                        |row| row.get(0),
                    )
                    .optional()?;
                if taken.is_none() {
                    break;
                }
                name = format!("artifact-{id}-{attempt}");
            }
            tx.execute("UPDATE model_artifacts SET name = ?1 WHERE id = ?2", params![name, id])?;
            fields.name = Some(name);
        }
        let artifact = ModelArtifact {
            id: id.to_string(),
            artifact_type: MODEL_ARTIFACT_TYPE.to_owned(),
            fields,
            create_time_since_epoch: Some(now.to_string()),
            last_update_time_since_epoch: Some(now.to_string()),
        };
        put_body(&tx, Kind::ModelArtifact, id, &artifact, now)?;
        tx.commit()?;
        Ok(artifact)
    }

    pub fn get_model_artifact(&self, id: &str) -> Result<ModelArtifact, RegistryError> {
        get_body(&self.conn, Kind::ModelArtifact, id)
    }

    pub fn update_model_artifact(
        &mut self,
        id: &str,
        update: ModelArtifactUpdate,
    ) -> Result<ModelArtifact, RegistryError> {
        let tx = self.conn.transaction()?;
        let mut artifact: ModelArtifact = get_body(&tx, Kind::ModelArtifact, id)?;
        let row_id = parse_id(Kind::ModelArtifact, id)?;
        check_external_id(&tx, Kind::ModelArtifact, update.external_id.as_deref(), Some(row_id))?;
        let now = now_millis();
        let f = &mut artifact.fields;
        macro_rules! replace_if_given {
            ($($field:ident),*) => { $( if update.$field.is_some() { f.$field = update.$field; } )* };
        }
        replace_if_given!(
            description,
            external_id,
            uri,
            state,
            model_format_name,
            model_format_version,
            storage_key,
            storage_path,
            service_account_name
        );
        if let Some(properties) = update.custom_properties {
            f.custom_properties = properties;
        }
        artifact.last_update_time_since_epoch = Some(now.to_string());
        tx.execute(
            "UPDATE model_artifacts SET external_id = ?1 WHERE id = ?2",
            params![artifact.fields.external_id, row_id],
        )?;
        put_body(&tx, Kind::ModelArtifact, row_id, &artifact, now)?;
        tx.commit()?;
        Ok(artifact)
    }

    pub fn find_model_artifact(&self, query: &FindQuery) -> Result<ModelArtifact, RegistryError> {
        self.find_child(Kind::ModelArtifact, query)
    }

    /// Artifacts of one version (`model_version_id`), or all artifacts.
    pub fn list_model_artifacts(
        &self,
        model_version_id: Option<&str>,
        query: &ListQuery,
    ) -> Result<ListPage<ModelArtifact>, RegistryError> {
        if let Some(id) = model_version_id {
            self.get_model_version(id)?;
        }
        self.list(Kind::ModelArtifact, model_version_id, query)
    }

    // --- shared --------------------------------------------------------------------------

    /// Every model (by name) with its versions and their artifacts (by id), for the web page.
    pub fn overview(&self) -> Result<Vec<ModelTree>, RegistryError> {
        let models: Vec<RegisteredModel> = self.bodies("SELECT body FROM registered_models ORDER BY name, id", [])?;
        let mut trees = Vec::with_capacity(models.len());
        for model in models {
            let model_row = parse_id(Kind::RegisteredModel, &model.id)?;
            let versions: Vec<ModelVersion> =
                self.bodies("SELECT body FROM model_versions WHERE registered_model_id = ?1 ORDER BY id", [model_row])?;
            let mut with_artifacts = Vec::with_capacity(versions.len());
            for version in versions {
                let version_row = parse_id(Kind::ModelVersion, &version.id)?;
                let artifacts = self.bodies(
                    "SELECT body FROM model_artifacts WHERE model_version_id = ?1 ORDER BY id",
                    [version_row],
                )?;
                with_artifacts.push((version, artifacts));
            }
            trees.push(ModelTree { model, versions: with_artifacts });
        }
        Ok(trees)
    }

    fn bodies<T: DeserializeOwned, P: rusqlite::Params>(&self, sql: &str, params: P) -> Result<Vec<T>, RegistryError> {
        let mut statement = self.conn.prepare(sql)?;
        let rows = statement.query_map(params, |row| row.get::<_, String>(0))?;
        let mut records = Vec::new();
        for body in rows {
            records.push(from_body(&body?)?);
        }
        Ok(records)
    }

    /// A version or artifact by `name` within its parent (`parentResourceId`), or by `externalId`.
    fn find_child<T: DeserializeOwned>(&self, kind: Kind, query: &FindQuery) -> Result<T, RegistryError> {
        let parent_column = kind.parent_column().expect("versions and artifacts have parents");
        let table = kind.table();
        let (body, described): (Option<String>, String) =
            match (&query.name, &query.external_id, &query.parent_resource_id) {
                (Some(name), _, Some(parent)) => {
                    let parent_row: Option<i64> = parent.trim().parse().ok();
                    let body = match parent_row {
                        Some(parent_row) => self
                            .conn
                            .query_row(
                                &format!("SELECT body FROM {table} WHERE {parent_column} = ?1 AND name = ?2"),
                                params![parent_row, name],
                                |row| row.get(0),
                            )
                            .optional()?,
                        None => None,
                    };
                    (body, format!("name {name:?} under parent id {parent:?}"))
                }
                (_, Some(external_id), _) => {
                    let body = self
                        .conn
                        .query_row(&format!("SELECT body FROM {table} WHERE external_id = ?1"), [external_id], |row| {
                            row.get(0)
                        })
                        .optional()?;
                    (body, format!("externalId {external_id:?}"))
                }
                (Some(_), None, None) => {
                    return Err(RegistryError::BadRequest(format!(
                        "a {} name is unique only within its parent: give query parameter `parentResourceId` too",
                        kind.noun()
                    )))
                }
                (None, None, _) => {
                    return Err(RegistryError::BadRequest(format!(
                        "find a {} by query parameters `name` and `parentResourceId`, or by `externalId`",
                        kind.noun()
                    )))
                }
            };
        match body {
            Some(body) => from_body(&body),
            None => Err(RegistryError::NotFound(format!("no {} with {described}", kind.noun()))),
        }
    }

    /// One page of a kind's records, optionally only the children of `parent_id`.
    ///
    /// The page token is the offset of the page's first record, as text; an empty token in the
    /// answer means there are no more pages.
    fn list<T: DeserializeOwned>(
        &self,
        kind: Kind,
        parent_id: Option<&str>,
        query: &ListQuery,
    ) -> Result<ListPage<T>, RegistryError> {
        let page_size = match &query.page_size {
            None => DEFAULT_PAGE_SIZE,
            Some(text) => match text.trim().parse::<i64>() {
                Ok(size) if size > 0 => size,
                _ => {
                    return Err(RegistryError::BadRequest(format!(
                        "query parameter `pageSize` must be a positive integer, got {text:?}"
                    )))
                }
            },
        };
        let offset = match query.next_page_token.as_deref().map(str::trim) {
            None | Some("") => 0,
            Some(token) => token.parse::<i64>().ok().filter(|o| *o >= 0).ok_or_else(|| {
                RegistryError::BadRequest(format!(
                    "query parameter `nextPageToken` {token:?} is not a token this registry issued"
                ))
            })?,
        };
        let order_column = match query.order_by.unwrap_or_default() {
            OrderBy::Id => "id",
            OrderBy::CreateTime => "create_time",
            OrderBy::LastUpdateTime => "update_time",
        };
        let direction = match query.sort_order.unwrap_or_default() {
            SortOrder::Asc => "ASC",
            SortOrder::Desc => "DESC",
        };
        let filter = match (kind.parent_column(), parent_id) {
            (Some(column), Some(_)) => format!("WHERE {column} = ?3"),
            _ => String::new(),
        };
        // One record more than the page, to learn whether another page follows.
        let sql = format!(
            "SELECT body FROM {} {filter} ORDER BY {order_column} {direction}, id {direction} LIMIT ?1 OFFSET ?2",
            kind.table()
        );
        let mut items: Vec<T> = match parent_id {
            Some(parent) => self.bodies(&sql, params![page_size + 1, offset, parse_id(kind, parent).unwrap_or(-1)])?,
            None => self.bodies(&sql, params![page_size + 1, offset])?,
        };
        let more = items.len() as i64 > page_size;
        items.truncate(page_size as usize);
        Ok(ListPage {
            size: items.len() as i64,
            items,
            next_page_token: if more { (offset + page_size).to_string() } else { String::new() },
            page_size,
        })
    }
}

fn check_artifact_type(artifact_type: &str) -> Result<(), RegistryError> {
    if artifact_type != MODEL_ARTIFACT_TYPE {
        return Err(RegistryError::BadRequest(format!(
            "field `artifactType` is {artifact_type:?}; this registry stores only {MODEL_ARTIFACT_TYPE:?} artifacts"
        )));
    }
    Ok(())
}
