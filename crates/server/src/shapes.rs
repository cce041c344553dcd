//! The JSON shapes of the API that are also configuration (queues, agents), with their
//! validation and their translation into the router's specs.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use switchboard_model::{
    AgentId, Capacity, Channel, QueueId, RecordingMode, SKILL_LEVELS, SkillId, SkillLevel,
    SkillRequirement,
};
use switchboard_routing::{AgentSpec, OverflowRule, OverflowTarget, QueueSpec};
use utoipa::ToSchema;

/// A skill a queue requires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequiredSkill {
    /// Skill id.
    #[schema(value_type = String)]
    pub skill: SkillId,
    /// Least level (1-10) that qualifies.
    #[serde(default = "one")]
    pub min_level: u8,
}

fn one() -> u8 {
    1
}

/// Service-level target: `percent` of interactions answered within `threshold_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceLevelTarget {
    /// Target share in percent (e.g. 80).
    pub percent: f64,
    /// Threshold in seconds (e.g. 20).
    pub threshold_s: u64,
}

impl Default for ServiceLevelTarget {
    fn default() -> Self {
        ServiceLevelTarget {
            percent: 80.0,
            threshold_s: 20,
        }
    }
}

/// An overflow step: after `after_s` seconds of waiting, either require `skills` instead or move
/// to `queue`. Exactly one of the two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Overflow {
    /// Seconds waited in the queue before this step.
    pub after_s: u64,
    /// Replacement skill requirement (widen the pool of agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skills: Option<Vec<RequiredSkill>>,
    /// Queue to move to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub queue: Option<QueueId>,
}

/// A queue's configuration (everything but its name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Default priority of its interactions; higher is served first across queues.
    #[serde(default)]
    pub priority: i32,
    /// Skills an agent needs.
    #[serde(default)]
    pub required_skills: Vec<RequiredSkill>,
    /// Service-level target.
    #[serde(default)]
    pub service_level: ServiceLevelTarget,
    /// Seconds an agent has to accept an offer.
    #[serde(default = "default_offer_timeout")]
    pub offer_timeout_s: u64,
    /// Seconds of after-contact work before the agent is free again.
    #[serde(default)]
    pub wrap_up_s: u64,
    /// Overflow steps.
    #[serde(default)]
    pub overflow: Vec<Overflow>,
    /// Handle time assumed for estimated wait until measured.
    #[serde(default = "default_handle_time")]
    pub expected_handle_time_s: u64,
    /// Allowed disposition codes; empty allows any.
    #[serde(default)]
    pub dispositions: Vec<String>,
    /// Call recording: which calls, and how long recordings are kept.
    #[serde(default)]
    pub recording: RecordingPolicy,
    /// The service-level clock of its email interactions (docs/email.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_sla: Option<EmailSla>,
}

/// A queue's call-recording policy (docs/voice.md, "Recordings").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordingPolicy {
    /// `none` (the default), `all`, `percent` (a share of the calls, chosen by the interaction
    /// id) or `on_demand` (started through the API during the call).
    #[serde(default)]
    #[schema(value_type = String, example = "all")]
    pub policy: RecordingMode,
    /// For `percent`: the share of calls recorded, 0-100.
    #[serde(default)]
    pub percent: u8,
    /// Days a finished recording is kept before the retention sweep deletes it (0: kept until
    /// deleted by hand). Changing it applies to the queue's existing recordings too.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
}

/// The longest retention accepted (100 years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

fn default_retention_days() -> u32 {
    90
}

impl Default for RecordingPolicy {
    fn default() -> Self {
        RecordingPolicy {
            policy: RecordingMode::None,
            percent: 0,
            retention_days: default_retention_days(),
        }
    }
}

impl RecordingPolicy {
    /// Whether a call with this interaction id is recorded from its start (sans-IO: the
    /// decision is `switchboard_routing::should_record`).
    pub fn records(&self, interaction: switchboard_model::InteractionId) -> bool {
        switchboard_routing::should_record(self.policy, self.percent, interaction)
    }
}

/// Emails are answered within `hours`, counted only while `business_hours` is open (always,
/// without it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailSla {
    /// Hours to the first answer (e.g. 4; fractions allowed, up to 8760).
    pub hours: f64,
    /// When the clock runs: a weekly schedule in an IANA zone with holidays
    /// (`{"time_zone", "open": [{"days", "from", "to"}], "holidays"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub business_hours: Option<switchboard_flow::Schedule>,
}

impl EmailSla {
    /// The due time of an email interaction created at `created_ms` (wall ms); `None` when the
    /// business hours never open.
    pub fn due_at(&self, created_ms: i64) -> Option<i64> {
        let budget = Duration::try_from_secs_f64(self.hours * 3600.0).ok()?;
        match &self.business_hours {
            None => created_ms.checked_add(i64::try_from(budget.as_millis()).ok()?),
            Some(b) => {
                let start = jiff::Timestamp::from_millisecond(created_ms).ok()?;
                switchboard_flow::add_open_time(b, start, budget)
                    .ok()
                    .flatten()
                    .map(|t| t.as_millisecond())
            }
        }
    }
}

fn default_offer_timeout() -> u64 {
    30
}

fn default_handle_time() -> u64 {
    180
}

impl Default for QueueConfig {
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({})).expect("every field has a default")
    }
}

/// A queue as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueueView {
    /// Id.
    pub id: String,
    /// Name, unique in the tenant.
    pub name: String,
    /// Configuration version, incremented at every change.
    pub version: i64,
    /// Configuration.
    #[serde(flatten)]
    pub config: QueueConfig,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

/// Body of `POST /api/v1/queues` and `PATCH /api/v1/queues/{id}` (documentation shape: the
/// handler reads `name` and parses the rest as a [`QueueConfig`], rejecting unknown fields).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NewQueueDoc {
    /// Name (required on create).
    pub name: String,
    /// Configuration fields, each optional (defaults on create, unchanged on update).
    #[serde(flatten)]
    pub config: QueueConfig,
}

/// A problem with a configuration value: which field and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// Field path.
    pub field: String,
    /// Problem.
    pub problem: String,
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Checks a login name: 1-64 characters of `A-Z a-z 0-9 . _ @ -`.
pub fn check_username(u: &str) -> Result<(), Invalid> {
    let ok = (1..=64).contains(&u.len())
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "username",
            "1-64 characters of A-Z a-z 0-9 . _ @ -",
        ))
    }
}

/// Checks a name (queues, skills): 1-64 characters, not blank.
pub fn check_name(field: &str, name: &str) -> Result<(), Invalid> {
    let n = name.trim();
    if n.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(invalid(field, "must be 1-64 printable characters"));
    }
    Ok(())
}

impl QueueConfig {
    /// Checks the values against each other and against the tenant's skills and queues.
    pub fn validate(
        &self,
        me: QueueId,
        skill_exists: &dyn Fn(SkillId) -> bool,
        queue_exists: &dyn Fn(QueueId) -> bool,
    ) -> Result<(), Invalid> {
        check_requirements("required_skills", &self.required_skills, skill_exists)?;
        let sl = &self.service_level;
        if !(sl.percent > 0.0 && sl.percent <= 100.0) {
            return Err(invalid("service_level.percent", "must be in (0, 100]"));
        }
        if sl.threshold_s == 0 || sl.threshold_s > 30 * 24 * 3600 {
            return Err(invalid(
                "service_level.threshold_s",
                "must be 1 s to 30 days",
            ));
        }
        if !(1..=3600).contains(&self.offer_timeout_s) {
            return Err(invalid("offer_timeout_s", "must be 1-3600 seconds"));
        }
        if self.wrap_up_s > 3600 {
            return Err(invalid("wrap_up_s", "must be at most 3600 seconds"));
        }
        if !(1..=86_400).contains(&self.expected_handle_time_s) {
            return Err(invalid("expected_handle_time_s", "must be 1-86400 seconds"));
        }
        if let Some(sla) = &self.email_sla {
            if !(sla.hours > 0.0 && sla.hours <= 8760.0) {
                return Err(invalid(
                    "email_sla.hours",
                    "must be more than 0, at most 8760",
                ));
            }
            if let Some(b) = &sla.business_hours {
                b.check()
                    .map_err(|e| invalid("email_sla.business_hours", e.to_string()))?;
                if sla.due_at(0).is_none() {
                    return Err(invalid(
                        "email_sla.business_hours",
                        "is never open: add opening spans",
                    ));
                }
            }
        }
        let mut last = 0;
        for (i, o) in self.overflow.iter().enumerate() {
            let f = format!("overflow[{i}]");
            if o.after_s == 0 || o.after_s < last {
                return Err(invalid(
                    f,
                    "after_s must be positive and not smaller than the step before",
                ));
            }
            last = o.after_s;
            match (&o.skills, o.queue) {
                (Some(s), None) => check_requirements(&format!("{f}.skills"), s, skill_exists)?,
                (None, Some(q)) => {
                    if q == me {
                        return Err(invalid(
                            format!("{f}.queue"),
                            "cannot overflow a queue into itself",
                        ));
                    }
                    if !queue_exists(q) {
                        return Err(invalid(
                            format!("{f}.queue"),
                            format!("no queue {q} in this tenant"),
                        ));
                    }
                }
                _ => return Err(invalid(f, "give exactly one of `skills` or `queue`")),
            }
        }
        for (i, d) in self.dispositions.iter().enumerate() {
            check_name(&format!("dispositions[{i}]"), d)?;
        }
        if self.recording.percent > 100 {
            return Err(invalid("recording.percent", "must be 0-100"));
        }
        if self.recording.retention_days > MAX_RETENTION_DAYS {
            return Err(invalid(
                "recording.retention_days",
                format!("must be 0-{MAX_RETENTION_DAYS} days (0 keeps recordings)"),
            ));
        }
        Ok(())
    }

    /// The router's view of this queue.
    pub fn spec(&self, id: QueueId) -> QueueSpec {
        QueueSpec {
            id,
            priority: self.priority,
            requirements: reqs(&self.required_skills),
            offer_timeout: Duration::from_secs(self.offer_timeout_s),
            overflow: self
                .overflow
                .iter()
                .map(|o| OverflowRule {
                    after: Duration::from_secs(o.after_s),
                    target: match (&o.skills, o.queue) {
                        (_, Some(q)) => OverflowTarget::Queue(q),
                        (Some(s), None) => OverflowTarget::Skills(reqs(s)),
                        (None, None) => OverflowTarget::Skills(reqs(&self.required_skills)),
                    },
                })
                .collect(),
            expected_handle_time: Duration::from_secs(self.expected_handle_time_s),
        }
    }
}

fn reqs(r: &[RequiredSkill]) -> Vec<SkillRequirement> {
    r.iter()
        .map(|r| SkillRequirement {
            skill: r.skill,
            min_level: r.min_level,
        })
        .collect()
}

fn check_requirements(
    field: &str,
    r: &[RequiredSkill],
    skill_exists: &dyn Fn(SkillId) -> bool,
) -> Result<(), Invalid> {
    for (i, s) in r.iter().enumerate() {
        if !SKILL_LEVELS.contains(&s.min_level) {
            return Err(invalid(format!("{field}[{i}].min_level"), "must be 1-10"));
        }
        if !skill_exists(s.skill) {
            return Err(invalid(
                format!("{field}[{i}].skill"),
                format!("no skill {} in this tenant", s.skill),
            ));
        }
        if r[..i].iter().any(|o| o.skill == s.skill) {
            return Err(invalid(format!("{field}[{i}].skill"), "listed twice"));
        }
    }
    Ok(())
}

/// An agent's skill as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSkill {
    /// Skill id.
    #[schema(value_type = String)]
    pub skill: SkillId,
    /// Level 1-10.
    pub level: u8,
}

/// Capacity as the API shows it: per channel, and whether voice excludes everything else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacityBody {
    /// Most interactions of each channel held at once (missing channel = 0).
    #[schema(value_type = BTreeMap<String, u16>)]
    pub per_channel: BTreeMap<Channel, u16>,
    /// Never hold voice together with anything else.
    #[serde(default = "yes")]
    pub voice_exclusive: bool,
}

fn yes() -> bool {
    true
}

impl From<Capacity> for CapacityBody {
    fn from(c: Capacity) -> Self {
        CapacityBody {
            per_channel: c.per_channel,
            voice_exclusive: c.voice_exclusive,
        }
    }
}

impl From<CapacityBody> for Capacity {
    fn from(c: CapacityBody) -> Self {
        Capacity {
            per_channel: c.per_channel,
            voice_exclusive: c.voice_exclusive,
        }
    }
}

/// Checks an agent's skills and capacity.
pub fn check_agent(
    skills: &[AgentSkill],
    capacity: &CapacityBody,
    skill_exists: &dyn Fn(SkillId) -> bool,
) -> Result<(), Invalid> {
    for (i, s) in skills.iter().enumerate() {
        if !SKILL_LEVELS.contains(&s.level) {
            return Err(invalid(format!("skills[{i}].level"), "must be 1-10"));
        }
        if !skill_exists(s.skill) {
            return Err(invalid(
                format!("skills[{i}].skill"),
                format!("no skill {} in this tenant", s.skill),
            ));
        }
        if skills[..i].iter().any(|o| o.skill == s.skill) {
            return Err(invalid(format!("skills[{i}].skill"), "listed twice"));
        }
    }
    for (c, n) in &capacity.per_channel {
        if *n > 100 {
            return Err(invalid(
                format!("capacity.per_channel.{c}"),
                "must be at most 100",
            ));
        }
    }
    Ok(())
}

/// The router's view of an agent.
pub fn agent_spec(id: AgentId, skills: &[AgentSkill], capacity: &CapacityBody) -> AgentSpec {
    AgentSpec {
        id,
        skills: skills
            .iter()
            .map(|s| SkillLevel {
                skill: s.skill,
                level: s.level,
            })
            .collect(),
        capacity: capacity.clone().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: u128) -> QueueId {
        QueueId::from_u128(n)
    }

    #[test]
    fn defaults_are_valid_and_overflow_rules_are_checked() {
        let c = QueueConfig::default();
        assert_eq!(c.offer_timeout_s, 30);
        assert!(c.validate(q(1), &|_| true, &|_| true).is_ok());

        let mut c = QueueConfig::default();
        c.overflow.push(Overflow {
            after_s: 10,
            skills: None,
            queue: Some(q(1)),
        });
        assert_eq!(
            c.validate(q(1), &|_| true, &|_| true)
                .expect_err("self")
                .field,
            "overflow[0].queue"
        );

        let mut c = QueueConfig::default();
        c.overflow.push(Overflow {
            after_s: 10,
            skills: Some(vec![]),
            queue: Some(q(2)),
        });
        assert_eq!(
            c.validate(q(1), &|_| true, &|_| true)
                .expect_err("both")
                .field,
            "overflow[0]"
        );

        let mut c = QueueConfig::default();
        c.required_skills.push(RequiredSkill {
            skill: SkillId::from_u128(5),
            min_level: 11,
        });
        assert_eq!(
            c.validate(q(1), &|_| true, &|_| true)
                .expect_err("level")
                .field,
            "required_skills[0].min_level"
        );
        c.required_skills[0].min_level = 3;
        assert_eq!(
            c.validate(q(1), &|_| false, &|_| true)
                .expect_err("skill")
                .field,
            "required_skills[0].skill"
        );
    }

    #[test]
    fn recording_policy_defaults_to_none_and_is_checked() {
        let c = QueueConfig::default();
        assert_eq!(c.recording.policy, RecordingMode::None);
        assert_eq!(c.recording.retention_days, 90);
        let c: QueueConfig = serde_json::from_value(serde_json::json!({
            "recording": {"policy": "percent", "percent": 30, "retention_days": 7}
        }))
        .expect("valid");
        assert_eq!(c.recording.policy, RecordingMode::Percent);
        assert!(c.validate(q(1), &|_| true, &|_| true).is_ok());
        let mut bad = c.clone();
        bad.recording.percent = 101;
        assert_eq!(
            bad.validate(q(1), &|_| true, &|_| true)
                .expect_err("percent")
                .field,
            "recording.percent"
        );
        bad.recording.percent = 5;
        bad.recording.retention_days = MAX_RETENTION_DAYS + 1;
        assert_eq!(
            bad.validate(q(1), &|_| true, &|_| true)
                .expect_err("days")
                .field,
            "recording.retention_days"
        );
        for junk in [
            serde_json::json!({"recording": {"policy": "sometimes"}}),
            serde_json::json!({"recording": {"policy": "all", "retain": 3}}),
            serde_json::json!({"recording": {"percent": -1}}),
            serde_json::json!({"recording": "all"}),
        ] {
            assert!(
                serde_json::from_value::<QueueConfig>(junk.clone()).is_err(),
                "{junk}"
            );
        }
        // an `all` queue records every call, a `none` one none
        let all = RecordingPolicy {
            policy: RecordingMode::All,
            ..RecordingPolicy::default()
        };
        assert!(all.records(switchboard_model::InteractionId::from_u128(7)));
        assert!(
            !RecordingPolicy::default().records(switchboard_model::InteractionId::from_u128(7))
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let e = serde_json::from_value::<QueueConfig>(serde_json::json!({"priorty": 3}));
        assert!(e.is_err());
    }
}
