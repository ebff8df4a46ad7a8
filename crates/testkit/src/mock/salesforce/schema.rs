//! The one schema of what the mock's REST API accepts, written from Salesforce's object
//! reference: the sObjects (Lead, Contact, Event, Task, Account, Opportunity, custom
//! objects), each field's type, length, whether the API may write it, whether it is
//! required, defaulted on create or a restricted picklist, which fields are external ids;
//! and the checks a save runs, each answering Salesforce's refusal:
//!
//! | refusal | when | source |
//! |---|---|---|
//! | `INVALID_FIELD` "No such column 'F' on sobject of type O" | a field the object lacks | [errorcodes] |
//! | `INVALID_FIELD` "The Id field should not be specified in the sobject data." | `Id` in a body | [create] |
//! | `INVALID_FIELD_FOR_INSERT_UPDATE` | a read-only field (`CreatedDate`, `Name`, an Event's `AccountId`) | [core] |
//! | `JSON_PARSER_ERROR` | a value of the wrong type (a list, `"soon"` for a date-time, `1.5` for an int) | [errorcodes] |
//! | `STRING_TOO_LONG` "L: data value too large: V (max length=N)" | text past its length (`Subject` 255, `LastName` 80, `FirstName` 40, `Email` 80) | [contact], [event], [core] |
//! | `INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST` | a value a restricted picklist lacks (`Event.ShowAs`: Busy, OutOfOffice, Free) | [event], [core] |
//! | `INVALID_EMAIL_ADDRESS` | an email field that is no address | [core] |
//! | `MALFORMED_ID` / `FIELD_INTEGRITY_EXCEPTION` | a lookup that is no id, or an id of the wrong object | [core] |
//! | `REQUIRED_FIELD_MISSING` | `Contact.LastName`, `Lead.LastName`/`Company`, an Event's start, and its end (`EndDateTime` or `DurationInMinutes`) unless all-day | [contact], [event] |
//! | `FIELD_INTEGRITY_EXCEPTION` | an Event ending before it starts, longer than 14 days, whose `DurationInMinutes` and `EndDateTime` disagree, or whose `StartDateTime` and `ActivityDateTime` differ | [event] |
//!
//! [errorcodes]: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm
//! [create]: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_sobject_create.htm
//! [core]: https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_concepts_core_data_objects.htm
//! [contact]: https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_contact.htm
//! [event]: https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_event.htm
//!
//! Each value is checked by [`super::values`]; the record-level checks (required fields,
//! an Event's times) are [`super::rules`]'.
//!
//! Invariants: a value that passes is stored normalised as Salesforce answers it
//! (date-times as `2026-12-01T15:00:00.000+0000` in UTC, numbers and booleans as JSON
//! numbers and booleans); custom fields (`…__c`) take any scalar; Event and Task custom
//! fields exist on both, as Salesforce's Activity custom fields do.

use serde_json::Value;

/// The mock org's one user, the default `OwnerId` and the `CreatedById` of every record.
pub(super) const MOCK_USER: &str = "005Mock00000000001";

/// What a lookup field may point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    /// `WhoId`: a Contact or a Lead.
    Who,
    /// `WhatId`: any record but a Contact or a Lead.
    What,
    /// `AccountId`: an Account.
    Account,
    /// `OwnerId`: a user (`005…`).
    User,
}

impl Target {
    /// Whether a record of `object` may be pointed at.
    pub(super) fn accepts(self, object: &str) -> bool {
        let person = object == "Contact" || object == "Lead";
        match self {
            Self::Who => person,
            Self::What => !person,
            Self::Account => object == "Account",
            Self::User => false,
        }
    }
}

/// A field's type, as far as the mock checks values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// string, textarea, phone, url, combobox, picklist.
    Text,
    /// email.
    Email,
    /// dateTime.
    DateTime,
    /// date.
    Date,
    /// int.
    Int,
    /// double, currency, percent.
    Number,
    /// boolean.
    Bool,
    /// reference.
    Ref(Target),
    /// A custom field: any scalar.
    Any,
}

impl Kind {
    /// The type's name in a `JSON_PARSER_ERROR` message.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Text | Self::Email | Self::Any => "string",
            Self::DateTime => "datetime",
            Self::Date => "date",
            Self::Int => "int",
            Self::Number => "double",
            Self::Bool => "boolean",
            Self::Ref(_) => "id",
        }
    }
}

/// One field of an sObject.
#[derive(Debug, Clone)]
pub(super) struct FieldDef {
    /// The API name.
    pub(super) name: String,
    /// The label Salesforce's messages use.
    pub(super) label: String,
    pub(super) kind: Kind,
    /// The longest text it holds, in characters.
    pub(super) max_len: Option<usize>,
    pub(super) required: bool,
    /// The API may set it (not a system or derived field).
    pub(super) writable: bool,
    /// A long text area: not usable in a query's `WHERE`.
    pub(super) filterable: bool,
    /// A restricted picklist's values.
    pub(super) restricted: Option<&'static [&'static str]>,
    /// Set on create when a body leaves it out.
    pub(super) default: Option<Value>,
    /// An External ID field (usable in `…/sobjects/{Object}/{Field}/{value}`).
    pub(super) external_id: bool,
}

impl FieldDef {
    fn new(name: &str, label: &str, kind: Kind) -> Self {
        Self {
            name: name.to_owned(),
            label: label.to_owned(),
            kind,
            max_len: None,
            required: false,
            writable: true,
            filterable: true,
            restricted: None,
            default: None,
            external_id: false,
        }
    }

    /// A text field of at most `max` characters.
    fn text(name: &str, label: &str, max: usize) -> Self {
        Self {
            max_len: Some(max),
            ..Self::new(name, label, Kind::Text)
        }
    }

    /// An email field (80 characters).
    fn email(name: &str, label: &str) -> Self {
        Self {
            max_len: Some(80),
            ..Self::new(name, label, Kind::Email)
        }
    }

    /// A long text area (32,000 characters, not filterable).
    fn long(name: &str, label: &str) -> Self {
        Self {
            filterable: false,
            ..Self::text(name, label, 32_000)
        }
    }

    /// A custom field (`…__c`): any scalar.
    pub(super) fn custom(name: &str, external_id: bool) -> Self {
        Self {
            external_id,
            ..Self::new(name, name, Kind::Any)
        }
    }

    fn required(self) -> Self {
        Self {
            required: true,
            ..self
        }
    }

    fn read_only(self) -> Self {
        Self {
            writable: false,
            ..self
        }
    }

    fn restricted(self, values: &'static [&'static str]) -> Self {
        Self {
            restricted: Some(values),
            ..self
        }
    }

    fn default(self, value: impl Into<Value>) -> Self {
        Self {
            default: Some(value.into()),
            ..self
        }
    }
}

/// An sObject.
#[derive(Debug, Clone)]
pub(super) struct ObjectDef {
    pub(super) name: String,
    /// Its record ids' first three characters.
    pub(super) prefix: String,
    /// Every field but `Id`, in the order reads show them.
    pub(super) fields: Vec<FieldDef>,
}

impl ObjectDef {
    fn new(name: &str, prefix: &str, own: Vec<FieldDef>) -> Self {
        let mut fields = own;
        fields.extend(system_fields());
        Self {
            name: name.to_owned(),
            prefix: prefix.to_owned(),
            fields,
        }
    }

    /// A custom object (`Booking__c`): `Name` and the system fields.
    pub(super) fn custom(name: &str, prefix: String) -> Self {
        let mut def = Self::new(name, "", vec![FieldDef::text("Name", "Name", 80)]);
        def.prefix = prefix;
        def
    }

    pub(super) fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The canonical name of `Id` or a field.
    pub(super) fn column(&self, name: &str) -> Option<String> {
        if name.eq_ignore_ascii_case("Id") {
            Some("Id".to_owned())
        } else {
            self.field(name).map(|f| f.name.clone())
        }
    }

    /// Adds a custom field, or sets whether an existing one is an external id.
    pub(super) fn define(&mut self, name: &str, external_id: bool) {
        match self
            .fields
            .iter_mut()
            .find(|f| f.name.eq_ignore_ascii_case(name))
        {
            Some(field) => field.external_id = external_id,
            None => self.fields.push(FieldDef::custom(name, external_id)),
        }
    }
}

/// The audit fields every object has, all read-only.
fn system_fields() -> Vec<FieldDef> {
    use Kind::{Bool, DateTime, Ref};
    vec![
        FieldDef::new("CreatedDate", "Created Date", DateTime).read_only(),
        FieldDef::new("CreatedById", "Created By ID", Ref(Target::User)).read_only(),
        FieldDef::new("LastModifiedDate", "Last Modified Date", DateTime).read_only(),
        FieldDef::new("LastModifiedById", "Last Modified By ID", Ref(Target::User)).read_only(),
        FieldDef::new("SystemModstamp", "System Modstamp", DateTime).read_only(),
        FieldDef::new("IsDeleted", "Deleted", Bool).read_only(),
    ]
}

fn owner(label: &str) -> FieldDef {
    FieldDef::new("OwnerId", label, Kind::Ref(Target::User)).default(MOCK_USER)
}

/// The standard objects, from the object reference (lengths from Salesforce's field
/// reference).
pub(super) fn standard_objects() -> Vec<ObjectDef> {
    use Kind::{Bool, Date, DateTime, Int, Number, Ref, Text};
    let f = FieldDef::new;
    let t = FieldDef::text;
    vec![
        ObjectDef::new(
            "Lead",
            "00Q",
            vec![
                t("Salutation", "Salutation", 40),
                t("FirstName", "First Name", 40),
                t("LastName", "Last Name", 80).required(),
                f("Name", "Full Name", Text).read_only(),
                t("Company", "Company", 255).required(),
                FieldDef::email("Email", "Email"),
                t("Phone", "Phone", 40),
                t("MobilePhone", "Mobile Phone", 40),
                t("Title", "Title", 128),
                t("Website", "Website", 255),
                t("LeadSource", "Lead Source", 255),
                t("Status", "Status", 255).default("Open - Not Contacted"),
                t("Industry", "Industry", 255),
                FieldDef::long("Description", "Description"),
                owner("Owner ID"),
            ],
        ),
        ObjectDef::new(
            "Contact",
            "003",
            vec![
                t("Salutation", "Salutation", 40),
                t("FirstName", "First Name", 40),
                t("LastName", "Last Name", 80).required(),
                f("Name", "Full Name", Text).read_only(),
                FieldDef::email("Email", "Email"),
                t("Phone", "Business Phone", 40),
                t("MobilePhone", "Mobile Phone", 40),
                t("Title", "Title", 128),
                t("Department", "Department", 80),
                f("Birthdate", "Birthdate", Date),
                t("LeadSource", "Lead Source", 255),
                t("MailingCity", "Mailing City", 40),
                t("MailingCountry", "Mailing Country", 80),
                FieldDef::long("Description", "Contact Description"),
                f("AccountId", "Account ID", Ref(Target::Account)),
                f("HasOptedOutOfEmail", "Email Opt Out", Bool),
                owner("Contact Owner ID"),
            ],
        ),
        ObjectDef::new(
            "Event",
            "00U",
            vec![
                t("Subject", "Subject", 255),
                f("StartDateTime", "Start Date Time", DateTime),
                f("EndDateTime", "End Date Time", DateTime),
                f("ActivityDateTime", "Due Date Time", DateTime),
                f("ActivityDate", "Due Date Only", Date),
                f("DurationInMinutes", "Duration", Int),
                f("IsAllDayEvent", "All-Day Event", Bool),
                f("IsPrivate", "Private", Bool),
                f("IsReminderSet", "Reminder Set", Bool),
                f("ReminderDateTime", "Reminder Date/Time", DateTime),
                t("ShowAs", "Show Time As", 40)
                    .restricted(&["Busy", "OutOfOffice", "Free"])
                    .default("Busy"),
                t("Type", "Type", 40),
                t("Location", "Location", 255),
                FieldDef::long("Description", "Description"),
                f("WhoId", "Name ID", Ref(Target::Who)),
                f("WhatId", "Related To ID", Ref(Target::What)),
                f("AccountId", "Account ID", Ref(Target::Account)).read_only(),
                owner("Assigned To ID"),
            ],
        ),
        ObjectDef::new(
            "Task",
            "00T",
            vec![
                t("Subject", "Subject", 255),
                f("ActivityDate", "Due Date Only", Date),
                t("Status", "Status", 40).default("Not Started"),
                t("Priority", "Priority", 40).default("Normal"),
                f("IsReminderSet", "Reminder Set", Bool),
                f("ReminderDateTime", "Reminder Date/Time", DateTime),
                FieldDef::long("Description", "Comments"),
                f("WhoId", "Name ID", Ref(Target::Who)),
                f("WhatId", "Related To ID", Ref(Target::What)),
                owner("Assigned To ID"),
            ],
        ),
        ObjectDef::new(
            "Opportunity",
            "006",
            vec![
                t("Name", "Name", 120).required(),
                t("StageName", "Stage", 255).required(),
                f("CloseDate", "Close Date", Date).required(),
                f("Amount", "Amount", Number),
                f("AccountId", "Account ID", Ref(Target::Account)),
                FieldDef::long("Description", "Description"),
                owner("Owner ID"),
            ],
        ),
        ObjectDef::new(
            "Account",
            "001",
            vec![
                t("Name", "Account Name", 255).required(),
                t("Website", "Website", 255),
                t("Phone", "Account Phone", 40),
                t("Industry", "Industry", 255),
                f("NumberOfEmployees", "Employees", Int),
                FieldDef::long("Description", "Account Description"),
                owner("Owner ID"),
            ],
        ),
    ]
}

/// The objects whose custom fields are Activity custom fields (created once, on both).
pub(super) const ACTIVITIES: [&str; 2] = ["Event", "Task"];

/// The key prefix of the `n`th custom object: `a00`, `a01`, … `a0z`, `a10`, …
pub(super) fn custom_prefix(n: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let n = n % (36 * 36);
    let digit = |i: usize| DIGITS.get(i).copied().map_or('0', char::from);
    format!("a{}{}", digit(n / 36), digit(n % 36))
}
