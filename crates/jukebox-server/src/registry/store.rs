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

use super::error::RegistryError;

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

/// The id of the record of `kind` named `name` under the parent row `parent_row` (a registered
/// model has no parent: `parent_row` is ignored), if there is one.
fn row_named(
    tx: &Transaction<'_>,
    kind: Kind,
    parent_row: Option<i64>,
    name: &str,
) -> Result<Option<i64>, RegistryError> {
    let table = kind.table();
    let id = match kind.parent_column() {
        // `IS`, not `=`: an artifact without a version has a NULL parent.
        Some(column) => tx.query_row(
            &format!("SELECT id FROM {table} WHERE {column} IS ?1 AND name = ?2"),
            params![parent_row, name],
            |row| row.get(0),
        ),
        None => tx.query_row(&format!("SELECT id FROM {table} WHERE name = ?1"), [name], |row| row.get(0)),
    };
    Ok(id.optional()?)
}

/// Inserts a row of `kind` with an empty body (written by [`put_body`] once the record, which
/// holds its own id, is made) and answers its id.
fn insert_row(
    tx: &Transaction<'_>,
    kind: Kind,
    parent_row: Option<i64>,
    name: Option<&str>,
    external_id: Option<&str>,
    now: i64,
) -> Result<i64, RegistryError> {
    let table = kind.table();
    match kind.parent_column() {
        Some(column) => tx.execute(
            &format!(
                "INSERT INTO {table} ({column}, name, external_id, create_time, update_time, body)
                 VALUES (?1, ?2, ?3, ?4, ?4, '{{}}')"
            ),
            params![parent_row, name, external_id, now],
        )?,
        None => tx.execute(
            &format!(
                "INSERT INTO {table} (name, external_id, create_time, update_time, body) VALUES (?1, ?2, ?3, ?3, '{{}}')"
            ),
            params![name, external_id, now],
        )?,
    };
    Ok(tx.last_insert_rowid())
}

/// A record's read form as the store's shared steps see it: its kind, its external id (a column
/// of its row too) and its update time.
trait StoredRecord: Serialize + DeserializeOwned {
    const KIND: Kind;
    fn external_id(&self) -> Option<&str>;
    fn set_update_time(&mut self, millis: i64);
}

/// Writes a new record's body into its row (`id`, inserted by [`insert_row`]) and commits.
fn commit_new<T: StoredRecord>(tx: Transaction<'_>, id: i64, record: T, now: i64) -> Result<T, RegistryError> {
    put_body(&tx, T::KIND, id, &record, now)?;
    tx.commit()?;
    Ok(record)
}

/// [`StoredRecord`] for each read form: its kind, and where its external id is.
macro_rules! updatable {
    ($($record:ident => $($external_id:ident).+;)*) => {$(
        impl StoredRecord for $record {
            const KIND: Kind = Kind::$record;
            fn external_id(&self) -> Option<&str> {
                self.$($external_id).+.as_deref()
            }
            fn set_update_time(&mut self, millis: i64) {
                self.last_update_time_since_epoch = Some(millis.to_string());
            }
        }
    )*};
}

updatable! {
    RegisteredModel => external_id;
    ModelVersion => external_id;
    ModelArtifact => fields.external_id;
}

/// An update form (a PATCH body): the external id it sets, if any, and how it changes the
/// stored record.
trait UpdateForm {
    type Record: StoredRecord;
    fn external_id(&self) -> Option<&str>;
    fn apply(self, record: &mut Self::Record);
}

/// [`UpdateForm`] for each update form, with the rule of all three: each given field replaces
/// the stored one (`customProperties` as a whole), absent fields stay.
macro_rules! update_forms {
    ($($form:ident => $record:ident $(.$part:ident)?: $($field:ident),*;)*) => {$(
        impl UpdateForm for $form {
            type Record = $record;
            fn external_id(&self) -> Option<&str> {
                self.external_id.as_deref()
            }
            fn apply(self, record: &mut $record) {
                let stored = &mut (*record)$(.$part)?;
                $( if self.$field.is_some() { stored.$field = self.$field; } )*
                if let Some(properties) = self.custom_properties {
                    stored.custom_properties = properties;
                }
            }
        }
    )*};
}

update_forms! {
    RegisteredModelUpdate => RegisteredModel: description, external_id, owner, state;
    ModelVersionUpdate => ModelVersion: description, external_id, author, state;
    ModelArtifactUpdate => ModelArtifact.fields: description, external_id, uri, state, model_format_name,
        model_format_version, storage_key, storage_path, service_account_name;
}

/// The read and update methods of each record kind, by id.
macro_rules! get_and_update {
    ($($get:ident, $update:ident: $record:ident, $form:ident;)*) => {$(
        #[doc = concat!("The ", stringify!($record), " with id `id`.")]
        pub fn $get(&self, id: &str) -> Result<$record, RegistryError> {
            get_body(&self.conn, Kind::$record, id)
        }

        #[doc = concat!("Changes the ", stringify!($record), " with id `id` as `update` says.")]
        pub fn $update(&mut self, id: &str, update: $form) -> Result<$record, RegistryError> {
            self.update(id, update)
        }
    )*};
}

/// The find and list methods of each child kind (versions of a model, artifacts of a version).
macro_rules! find_and_list_children {
    ($($find:ident, $list:ident: $record:ident under $get_parent:ident;)*) => {$(
        #[doc = concat!("A ", stringify!($record), " by `name` within its parent, or by `externalId`.")]
        pub fn $find(&self, query: &FindQuery) -> Result<$record, RegistryError> {
            self.find_child(Kind::$record, query)
        }

        #[doc = concat!("The ", stringify!($record), "s of one parent (`parent_id`), or all of them.")]
        pub fn $list(&self, parent_id: Option<&str>, query: &ListQuery) -> Result<ListPage<$record>, RegistryError> {
            if let Some(id) = parent_id {
                self.$get_parent(id)?;
            }
            self.list(Kind::$record, parent_id, query)
        }
    )*};
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

    get_and_update! {
        get_registered_model, update_registered_model: RegisteredModel, RegisteredModelUpdate;
        get_model_version, update_model_version: ModelVersion, ModelVersionUpdate;
        get_model_artifact, update_model_artifact: ModelArtifact, ModelArtifactUpdate;
    }

    find_and_list_children! {
        find_model_version, list_model_versions: ModelVersion under get_registered_model;
        find_model_artifact, list_model_artifacts: ModelArtifact under get_model_version;
    }

    // --- registered models ---------------------------------------------------------------

    pub fn create_registered_model(&mut self, create: RegisteredModelCreate) -> Result<RegisteredModel, RegistryError> {
        require_non_empty("name", &create.name)?;
        let tx = self.conn.transaction()?;
        if let Some(existing) = row_named(&tx, Kind::RegisteredModel, None, &create.name)? {
            return Err(RegistryError::Conflict(format!(
                "a registered model named {:?} already exists (id {existing})",
                create.name
            )));
        }
        check_external_id(&tx, Kind::RegisteredModel, create.external_id.as_deref(), None)?;
        let now = now_millis();
        let id = insert_row(&tx, Kind::RegisteredModel, None, Some(&create.name), create.external_id.as_deref(), now)?;
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
        commit_new(tx, id, model, now)
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
        if let Some(existing) = row_named(&tx, Kind::ModelVersion, Some(model_row), &create.name)? {
            return Err(RegistryError::Conflict(format!(
                "model {:?} already has a version named {:?} (id {existing})",
                model.name, create.name
            )));
        }
        check_external_id(&tx, Kind::ModelVersion, create.external_id.as_deref(), None)?;
        let now = now_millis();
        let id = insert_row(
            &tx,
            Kind::ModelVersion,
            Some(model_row),
            Some(&create.name),
            create.external_id.as_deref(),
            now,
        )?;
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
        commit_new(tx, id, version, now)
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
            if let Some(existing) = row_named(&tx, Kind::ModelArtifact, Some(version_row), name)? {
                return Err(RegistryError::Conflict(format!(
                    "model version {version_row} already has an artifact named {name:?} (id {existing})"
                )));
            }
        }
        check_external_id(&tx, Kind::ModelArtifact, create.fields.external_id.as_deref(), None)?;
        let now = now_millis();
        let fields = &create.fields;
        let id = insert_row(
            &tx,
            Kind::ModelArtifact,
            version_row,
            fields.name.as_deref(),
            fields.external_id.as_deref(),
            now,
        )?;
        let mut fields = create.fields;
        fields.state.get_or_insert(ArtifactState::Unknown);
        if fields.name.is_none() {
            // Clients (the Python one among them) expect every artifact to have a name. The
            // automatic one may already be taken by a named artifact: add a suffix until free.
            let mut name = format!("artifact-{id}");
            for attempt in 2.. {
                if row_named(&tx, Kind::ModelArtifact, version_row, &name)?.is_none() {
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
        commit_new(tx, id, artifact, now)
    }

    // --- shared --------------------------------------------------------------------------

    /// Record `id` changed by `update`, in one transaction: refuses an external id another
    /// record of the kind holds, stamps the update time, writes the row.
    fn update<F: UpdateForm>(&mut self, id: &str, update: F) -> Result<F::Record, RegistryError> {
        let kind = <F::Record as StoredRecord>::KIND;
        let tx = self.conn.transaction()?;
        let mut record: F::Record = get_body(&tx, kind, id)?;
        let row_id = parse_id(kind, id)?;
        check_external_id(&tx, kind, update.external_id(), Some(row_id))?;
        let now = now_millis();
        update.apply(&mut record);
        record.set_update_time(now);
        tx.execute(
            &format!("UPDATE {} SET external_id = ?1 WHERE id = ?2", kind.table()),
            params![record.external_id(), row_id],
        )?;
        put_body(&tx, kind, row_id, &record, now)?;
        tx.commit()?;
        Ok(record)
    }

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
