//! Roles, the review workflow, and who may move a record along it.
//!
//! ```text
//! draft ──submit──▶ submitted ──approve──▶ approved ──archive──▶ archived
//!                    │    ▲                    │                    │
//!        request changes  resubmit             └──reopen──┐  unarchive
//!                    ▼    │                               ▼         ▼
//!                 needs_changes ◀─────────────────────────┘     approved
//! ```
//! Field staff (monitors, liaisons) submit and resubmit; coordinators (and admins, who hold
//! every coordinator right) request changes, approve, reopen and archive. The same table is used
//! by the PWA to offer actions and by the server to refuse changes that break it.

use serde::{Deserialize, Serialize};

use crate::catalogue::{Label, RecordKind};

/// What a user is allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Observes hearings and writes court observations.
    Monitor,
    /// Visits families and writes family statements.
    Liaison,
    /// Reviews, resolves conflicts, approves, exports.
    Coordinator,
    /// A coordinator who also manages accounts, devices and cases.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Monitor, Role::Liaison, Role::Coordinator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Monitor => "monitor",
            Role::Liaison => "liaison",
            Role::Coordinator => "coordinator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Coordinators and admins review records and see every case.
    pub fn reviews(self) -> bool {
        matches!(self, Role::Coordinator | Role::Admin)
    }

    /// Which kinds of record this role may create.
    pub fn may_create(self, kind: RecordKind) -> bool {
        match self {
            Role::Monitor => kind == RecordKind::CourtObservation,
            Role::Liaison => kind == RecordKind::FamilyStatement,
            Role::Coordinator | Role::Admin => true,
        }
    }
}

/// Where a record is in the review workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    Submitted,
    NeedsChanges,
    Approved,
    Archived,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Draft,
        Status::Submitted,
        Status::NeedsChanges,
        Status::Approved,
        Status::Archived,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Submitted => "submitted",
            Status::NeedsChanges => "needs_changes",
            Status::Approved => "approved",
            Status::Archived => "archived",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn label(self) -> Label {
        match self {
            Status::Draft => Label {
                en: "Draft",
                km: "សេចក្តីព្រាង",
            },
            Status::Submitted => Label {
                en: "Submitted",
                km: "បានដាក់ស្នើ",
            },
            Status::NeedsChanges => Label {
                en: "Needs changes",
                km: "ត្រូវការកែប្រែ",
            },
            Status::Approved => Label {
                en: "Approved",
                km: "បានអនុម័ត",
            },
            Status::Archived => Label {
                en: "Archived",
                km: "បានរក្សាទុកក្នុងបណ្ណសារ",
            },
        }
    }

    /// Whether field staff may still edit the record: not once a coordinator approved it (a
    /// coordinator reopens it for changes) or archived it.
    pub fn open_for_field_staff(self) -> bool {
        !matches!(self, Status::Approved | Status::Archived)
    }
}

/// The kind of a review entry (a comment in the record's review trail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewAction {
    Comment,
    Submit,
    RequestChanges,
    Approve,
    Reopen,
    Archive,
    Unarchive,
    /// A coordinator chose one value of a conflicted field.
    Resolve,
    /// The family (or person) withdrew consent: a liaison asks a coordinator to purge the record.
    WithdrawConsent,
}

impl ReviewAction {
    pub const ALL: [ReviewAction; 9] = [
        ReviewAction::Comment,
        ReviewAction::Submit,
        ReviewAction::RequestChanges,
        ReviewAction::Approve,
        ReviewAction::Reopen,
        ReviewAction::Archive,
        ReviewAction::Unarchive,
        ReviewAction::Resolve,
        ReviewAction::WithdrawConsent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReviewAction::Comment => "comment",
            ReviewAction::Submit => "submit",
            ReviewAction::RequestChanges => "request_changes",
            ReviewAction::Approve => "approve",
            ReviewAction::Reopen => "reopen",
            ReviewAction::Archive => "archive",
            ReviewAction::Unarchive => "unarchive",
            ReviewAction::Resolve => "resolve",
            ReviewAction::WithdrawConsent => "withdraw_consent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Whether a user with `role` may write a review entry of this kind.
    pub fn allowed_for(self, role: Role) -> bool {
        match self {
            ReviewAction::Comment | ReviewAction::Submit => true,
            ReviewAction::WithdrawConsent => role == Role::Liaison || role.reviews(),
            _ => role.reviews(),
        }
    }
}

/// One allowed step of the workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
    pub action: ReviewAction,
    /// Only coordinators and admins may take this step.
    pub reviewers_only: bool,
}

/// Every allowed step. Anything not listed is refused, for every role.
pub const TRANSITIONS: &[Transition] = &[
    Transition {
        from: Status::Draft,
        to: Status::Submitted,
        action: ReviewAction::Submit,
        reviewers_only: false,
    },
    Transition {
        from: Status::NeedsChanges,
        to: Status::Submitted,
        action: ReviewAction::Submit,
        reviewers_only: false,
    },
    Transition {
        from: Status::Submitted,
        to: Status::NeedsChanges,
        action: ReviewAction::RequestChanges,
        reviewers_only: true,
    },
    Transition {
        from: Status::Submitted,
        to: Status::Approved,
        action: ReviewAction::Approve,
        reviewers_only: true,
    },
    Transition {
        from: Status::Approved,
        to: Status::NeedsChanges,
        action: ReviewAction::Reopen,
        reviewers_only: true,
    },
    Transition {
        from: Status::Approved,
        to: Status::Archived,
        action: ReviewAction::Archive,
        reviewers_only: true,
    },
    Transition {
        from: Status::Archived,
        to: Status::Approved,
        action: ReviewAction::Unarchive,
        reviewers_only: true,
    },
    // A mistaken draft ("(untitled)", a test) is put away by a coordinator; nothing is lost,
    // and reopening gives it back to its author to finish and submit.
    Transition {
        from: Status::Draft,
        to: Status::Archived,
        action: ReviewAction::Archive,
        reviewers_only: true,
    },
    Transition {
        from: Status::Archived,
        to: Status::NeedsChanges,
        action: ReviewAction::Reopen,
        reviewers_only: true,
    },
];

/// The step from `from` to `to`, if `role` may take it.
pub fn transition(from: Status, to: Status, role: Role) -> Option<&'static Transition> {
    TRANSITIONS
        .iter()
        .find(|t| t.from == from && t.to == to && (!t.reviewers_only || role.reviews()))
}

/// Whether `role` can ever move a record to `status` (every status but the first is reached
/// by some step).
pub fn may_reach(status: Status, role: Role) -> bool {
    status == Status::Draft
        || TRANSITIONS
            .iter()
            .any(|t| t.to == status && (!t.reviewers_only || role.reviews()))
}

/// The steps `role` may take from `from` (for offering buttons).
pub fn transitions_from(from: Status, role: Role) -> impl Iterator<Item = &'static Transition> {
    TRANSITIONS
        .iter()
        .filter(move |t| t.from == from && (!t.reviewers_only || role.reviews()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_staff_submit_but_never_approve() {
        for role in [Role::Monitor, Role::Liaison] {
            assert!(transition(Status::Draft, Status::Submitted, role).is_some());
            assert!(transition(Status::NeedsChanges, Status::Submitted, role).is_some());
            assert!(transition(Status::Submitted, Status::Approved, role).is_none());
            assert!(transition(Status::Submitted, Status::NeedsChanges, role).is_none());
            assert!(transition(Status::Approved, Status::Archived, role).is_none());
            assert!(transition(Status::Draft, Status::Archived, role).is_none());
        }
    }

    #[test]
    fn reviewers_follow_the_graph_only() {
        for role in [Role::Coordinator, Role::Admin] {
            assert!(transition(Status::Submitted, Status::Approved, role).is_some());
            assert!(transition(Status::Approved, Status::Archived, role).is_some());
            // No skipping review: a draft cannot jump to approved.
            assert!(transition(Status::Draft, Status::Approved, role).is_none());
            // A mistaken draft can be put away, and given back to its author.
            assert!(transition(Status::Draft, Status::Archived, role).is_some());
            assert!(transition(Status::Archived, Status::NeedsChanges, role).is_some());
        }
        let from_submitted: Vec<_> = transitions_from(Status::Submitted, Role::Coordinator)
            .map(|t| t.to)
            .collect();
        assert_eq!(from_submitted, [Status::NeedsChanges, Status::Approved]);
        assert_eq!(
            transitions_from(Status::Submitted, Role::Monitor).count(),
            0
        );
    }

    #[test]
    fn creation_rights_follow_roles() {
        assert!(Role::Monitor.may_create(RecordKind::CourtObservation));
        assert!(!Role::Monitor.may_create(RecordKind::FamilyStatement));
        assert!(!Role::Monitor.may_create(RecordKind::Case));
        assert!(Role::Liaison.may_create(RecordKind::FamilyStatement));
        assert!(!Role::Liaison.may_create(RecordKind::CourtObservation));
        assert!(Role::Coordinator.may_create(RecordKind::Case));
        for a in ReviewAction::ALL {
            assert_eq!(ReviewAction::parse(a.as_str()), Some(a));
        }
        assert!(!ReviewAction::Approve.allowed_for(Role::Monitor));
        assert!(ReviewAction::Comment.allowed_for(Role::Liaison));
    }
}
