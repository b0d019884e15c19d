//! Domain types of the catalog, after GB/T 21063 (政务信息资源目录) core metadata.
//!
//! These are the values stored in the replicated state machine and returned by the API.
//! Everything here is plain data: validation lives in [`crate::validate`], state
//! transitions in [`crate::state`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// A government department (委办局) that provides and consumes data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Department {
    /// Department code, e.g. `320600-YJJ` (region code + short letters).
    pub code: String,
    /// Full name, e.g. 南通市应急管理局.
    pub name: String,
    /// Administrative region, e.g. 南通市.
    pub region: String,
    /// When the department was registered (RFC 3339, UTC).
    #[serde(default)]
    pub created_at: String,
}

/// How a dataset may be shared with other departments (共享类型).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareType {
    /// 无条件共享: any department system may read it.
    Unconditional,
    /// 有条件共享: readable through an approved, unexpired grant only.
    Conditional,
    /// 不予共享: never leaves the providing department.
    None,
}

impl ShareType {
    pub const ALL: [ShareType; 3] = [
        ShareType::Unconditional,
        ShareType::Conditional,
        ShareType::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ShareType::Unconditional => "unconditional",
            ShareType::Conditional => "conditional",
            ShareType::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<ShareType> {
        ShareType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for ShareType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The form in which a dataset is offered (信息资源格式).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Table,
    File,
    Api,
}

/// How often the provider updates the dataset (更新周期).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateCycle {
    Realtime,
    Daily,
    Weekly,
    Monthly,
    Quarterly,
    Yearly,
    Irregular,
}

impl UpdateCycle {
    pub const ALL: [UpdateCycle; 7] = [
        UpdateCycle::Realtime,
        UpdateCycle::Daily,
        UpdateCycle::Weekly,
        UpdateCycle::Monthly,
        UpdateCycle::Quarterly,
        UpdateCycle::Yearly,
        UpdateCycle::Irregular,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UpdateCycle::Realtime => "realtime",
            UpdateCycle::Daily => "daily",
            UpdateCycle::Weekly => "weekly",
            UpdateCycle::Monthly => "monthly",
            UpdateCycle::Quarterly => "quarterly",
            UpdateCycle::Yearly => "yearly",
            UpdateCycle::Irregular => "irregular",
        }
    }

    pub fn parse(s: &str) -> Option<UpdateCycle> {
        UpdateCycle::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Sensitivity class of one field (信息项敏感级别).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    Public,
    Internal,
    /// Masked for consumers outside the providing department unless a grant names it.
    Sensitive,
}

/// How a sensitive field is masked when it must be masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Masking {
    /// Resident ID number: keep the first 6 and last 4 characters (320602********1234).
    IdCard,
    /// Phone number: keep the first 3 and last 4 digits (138****5678).
    Phone,
    /// Person's name: keep the surname, two characters for compound surnames (张*,
    /// 欧阳**).
    Name,
    /// Address: keep it down to the district or county (区/县/旗), else the city (市).
    Address,
    /// Bank card number: keep the first 6 and last 4 digits (622202*********0123).
    BankCard,
    /// Licence plate: keep the province and issuing-office letter and the last 2
    /// characters (苏F***45).
    Plate,
    /// Replace the whole value with `***`.
    Full,
    /// Replace the value with null.
    Null,
}

/// Column type of a field (信息项数据类型).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Integer,
    Float,
    Boolean,
    Date,
    Datetime,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Float => "float",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
        }
    }
}

/// One field (信息项) of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// Column name in the source, `[a-z_][a-z0-9_]*`.
    pub name: String,
    /// Human title, e.g. 统一社会信用代码.
    pub title: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub sensitivity: Sensitivity,
    /// Masking rule for a sensitive field; [`Masking::Full`] when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masking: Option<Masking>,
}

/// Where the records of a dataset are read from. Credentials never live here: `id`
/// names a source configured on each node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    /// Source id in the node configuration (`[sources.<id>]`).
    pub id: String,
    /// Table (or path/endpoint, depending on the source kind).
    pub table: String,
}

/// Lifecycle of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetStatus {
    Active,
    Retired,
}

/// A dataset (信息资源) as stored in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    /// Resource code, unique in the catalog.
    pub id: String,
    /// Providing department code.
    pub dept: String,
    pub title: String,
    pub summary: String,
    pub keywords: Vec<String>,
    /// Theme (分类), e.g. 安全生产.
    pub theme: String,
    pub format: Format,
    pub share_type: ShareType,
    /// The condition or legal basis; required for conditional and none.
    pub share_condition: String,
    /// Open-data attribute (开放属性), free text such as 不予开放.
    pub open_type: String,
    pub update_cycle: UpdateCycle,
    pub fields: Vec<Field>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRef>,
    /// RFC 3339 UTC time of first registration.
    pub published_at: String,
    /// RFC 3339 UTC time of the last change.
    pub updated_at: String,
    /// Starts at 1, incremented on each update.
    pub version: u64,
    pub status: DatasetStatus,
}

impl Dataset {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// What a steward submits to register or update a dataset. Server-assigned values
/// (`published_at`, `version`, `status`) are not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetInput {
    pub id: String,
    pub dept: String,
    pub title: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    pub theme: String,
    pub format: Format,
    pub share_type: ShareType,
    #[serde(default)]
    pub share_condition: String,
    #[serde(default)]
    pub open_type: String,
    pub update_cycle: UpdateCycle,
    pub fields: Vec<Field>,
    #[serde(default)]
    pub source: Option<SourceRef>,
}

/// Roles are catalog state (casbin grouping rules), not certificate fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages departments and roles.
    Admin,
    /// City-wide auditor: reads the whole audit trail.
    Auditor,
    /// Department auditor: audit records where their department is consumer or provider.
    DeptAuditor,
    /// Registers and describes the department's datasets, decides access requests.
    Steward,
    /// A department system (machine client) that reads data.
    System,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Auditor,
        Role::DeptAuditor,
        Role::Steward,
        Role::System,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::DeptAuditor => "dept_auditor",
            Role::Steward => "steward",
            Role::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role bound to a principal (SPIFFE ID).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleBinding {
    pub principal: String,
    pub role: Role,
}

/// State of an access request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Pending,
    Approved,
    Rejected,
    Withdrawn,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Rejected => "rejected",
            RequestState::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<RequestState> {
        [
            RequestState::Pending,
            RequestState::Approved,
            RequestState::Rejected,
            RequestState::Withdrawn,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// A consumer's request for access to a (conditional) dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRequest {
    pub id: String,
    /// SPIFFE ID of the principal who asked.
    pub consumer: String,
    /// Department code of the consumer; grants are issued to this department.
    pub consumer_dept: String,
    pub dataset: String,
    /// Providing department (the dataset's department at request time).
    pub provider_dept: String,
    pub fields: Vec<String>,
    pub purpose: String,
    pub days: u32,
    pub state: RequestState,
    pub created_at: String,
    /// When the provider should have decided: `created_at` plus 10 working days (the
    /// national rule; weekends skipped, public holidays not known). Absent on requests
    /// made before yiwang recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decide_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
}

/// Permission, resulting from an approval, for one consumer department to read some
/// fields (and optionally some rows) of one dataset until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: String,
    pub request_id: String,
    /// Consumer department code.
    pub consumer_dept: String,
    /// Principal who asked for it.
    pub requested_by: String,
    pub dataset: String,
    pub provider_dept: String,
    pub fields: Vec<String>,
    /// Row filter in the record filter language, ANDed to every read under this grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_filter: Option<String>,
    pub purpose: String,
    pub approved_by: String,
    pub created_at: String,
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
}

impl Grant {
    /// A grant is usable when it is neither revoked nor expired at `now` (RFC 3339 UTC;
    /// the fixed-width format makes string order equal time order).
    pub fn is_active_at(&self, now: &str) -> bool {
        self.revoked_at.is_none() && self.expires_at.as_str() > now
    }
}

/// The latest audit-chain position a node has published through Raft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditAnchor {
    pub node_id: u64,
    pub seq: u64,
    pub hash: String,
    pub at: String,
    /// Where the node's retained audit trail starts, once retention has deleted older
    /// records; absent while the trail is whole from its first record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<AuditCut>,
}

/// The start of a node's retained audit trail: its first retained record `seq` links to
/// `prev_hash`, the hash of the last deleted record. Published through Raft before the
/// older records are deleted, so that a verifier can tell retention from removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCut {
    pub seq: u64,
    pub prev_hash: String,
    /// Time of the first retained record.
    pub time: String,
}
