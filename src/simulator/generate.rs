//! The seeded data generator: realistic spreads of statuses, priorities, organizations,
//! users, groups, ratings and ticket history, all derived from one seed and "now".
use std::num::NonZeroU64;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};

use super::data::{
    Audit, Dataset, Group, Organization, Rating, Text, Ticket, User, AUDIT_ID_BASE, GROUP_ID_BASE,
    ORG_ID_BASE, RATING_ID_BASE, USER_ID_BASE,
};
use super::index::SortedIndex;
use super::model::{Channel, Priority, Role, Score, Status};

/// Ticket subjects (a ticket's description uses the same index in [`DESCRIPTIONS`]).
pub(crate) const SUBJECTS: &[&str] = &[
    "Cannot log in to the dashboard",
    "Invoice shows the wrong amount",
    "Export to CSV times out",
    "Password reset email never arrives",
    "How do I add a new team member?",
    "API returns 500 on large requests",
    "Feature request: dark mode",
    "Billing address change",
    "Data missing after last sync",
    "Mobile app crashes on start",
    "SSO configuration help",
    "Upgrade our plan",
    "Report numbers do not add up",
    "Webhook deliveries failing",
    "Cancel my subscription",
    "Slow page loads since this morning",
    "Integration with Salesforce stopped working",
    "Refund request",
    "Two-factor authentication locked me out",
    "Question about data retention",
];

/// Ticket descriptions, parallel to [`SUBJECTS`].
pub(crate) const DESCRIPTIONS: &[&str] = &[
    "Since yesterday none of our users can log in; the page just reloads.",
    "Our last invoice charged us for 50 seats but we only have 35.",
    "Exporting more than a month of data to CSV never finishes.",
    "I requested a password reset three times and got no email.",
    "We hired someone new; how do I give them access?",
    "POST requests with more than 1,000 items fail with a 500 error.",
    "It would be great to have a dark theme for late shifts.",
    "Please update our billing address to the new office.",
    "Records created last week are missing after the nightly sync.",
    "The iOS app closes immediately after the splash screen.",
    "We need help configuring SAML single sign-on with Okta.",
    "We would like to move to the enterprise plan.",
    "The monthly report totals differ from the detail view.",
    "Our endpoint receives no webhook calls since Monday.",
    "Please cancel our subscription at the end of the term.",
    "Every page takes 10+ seconds to load today.",
    "The Salesforce integration shows an authentication error.",
    "We were charged twice this month and would like a refund.",
    "I lost my phone and cannot complete two-factor login.",
    "How long do you keep data after we close the account?",
];

/// Ticket types by index (`type` field); None is common too.
pub(crate) const TICKET_TYPES: &[&str] = &["question", "incident", "problem", "task"];

/// `(time_zone, iana_time_zone)` pairs by index.
pub(crate) const TIME_ZONES: &[(&str, &str)] = &[
    ("Eastern Time (US & Canada)", "America/New_York"),
    ("Pacific Time (US & Canada)", "America/Los_Angeles"),
    ("London", "Europe/London"),
    ("Berlin", "Europe/Berlin"),
    ("Tokyo", "Asia/Tokyo"),
    ("Sydney", "Australia/Sydney"),
    ("UTC", "Etc/UTC"),
];

const TAGS: &[&str] = &[
    "billing",
    "login",
    "api",
    "bug",
    "feature_request",
    "vip",
    "mobile",
    "sso",
    "refund",
    "performance",
];

const GROUP_NAMES: &[&str] = &[
    "Support",
    "Billing",
    "Escalations",
    "Onboarding",
    "Technical",
    "Sales",
    "Success",
    "Operations",
];

const ORG_ADJECTIVES: &[&str] = &[
    "Acme", "Blue", "Bright", "Global", "Golden", "Green", "Northern", "Pacific", "Quantum",
    "Rapid", "Red", "Silver", "Smart", "Solid", "Summit", "Swift", "True", "United", "Vivid",
    "Wise",
];

const ORG_NOUNS: &[&str] = &[
    "Analytics",
    "Bakery",
    "Cloud",
    "Dynamics",
    "Energy",
    "Foods",
    "Freight",
    "Health",
    "Labs",
    "Logistics",
    "Media",
    "Motors",
    "Networks",
    "Pharma",
    "Robotics",
    "Software",
    "Studios",
    "Systems",
    "Textiles",
    "Ventures",
];

const ORG_KINDS: &[&str] = &["Inc", "LLC", "GmbH", "Ltd", "Group", "Co"];

const FIRST_NAMES: &[&str] = &[
    "Alice", "Bob", "Carla", "Deepak", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemal",
    "Lena", "Mateo", "Nadia", "Oscar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Victor",
    "Wen", "Ximena", "Yusuf", "Zoe",
];

const LAST_NAMES: &[&str] = &[
    "Anders", "Brown", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jensen",
    "Kowalski", "Lopez", "Muller", "Nakamura", "Okafor", "Patel", "Rossi", "Smith", "Tanaka",
    "Weber",
];

const GOOD_COMMENTS: &[&str] = &[
    "Quick and helpful, thanks!",
    "Solved my problem in minutes.",
    "Great support as always.",
    "Very patient and clear.",
];

const BAD_COMMENTS: &[&str] = &[
    "Took far too long to get an answer.",
    "The problem is still not fixed.",
    "Nobody read my original message.",
    "I had to explain everything three times.",
];

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GenParams {
    pub(crate) seed: u64,
    pub(crate) tickets: u32,
    pub(crate) organizations: u32,
    pub(crate) users: u32,
    pub(crate) groups: u32,
    pub(crate) years: u32,
    pub(crate) admin_email: String,
}

const DAY: i64 = 86_400;

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn weighted<T: Copy>(rng: &mut StdRng, choices: &[(T, u32)]) -> T {
    let total: u32 = choices.iter().map(|c| c.1).sum();
    let mut roll = rng.random_range(0..total.max(1));
    for (value, weight) in choices {
        if roll < *weight {
            return *value;
        }
        roll -= weight;
    }
    choices[choices.len() - 1].0
}

fn between(rng: &mut StdRng, low: i64, high: i64) -> i64 {
    if high <= low {
        low
    } else {
        rng.random_range(low..=high)
    }
}

fn nz(id: u64) -> Option<NonZeroU64> {
    NonZeroU64::new(id)
}

/// Builds the whole data set for `params` as seen at Unix time `now`.
pub(crate) fn generate(params: &GenParams, now: i64) -> Dataset {
    let mut rng = StdRng::seed_from_u64(params.seed);
    let span = (i64::from(params.years) * 365 * DAY).max(DAY);
    // Generated history stops two minutes ago, clear of the 60-second rule.
    let latest = now - 120;
    let origin = latest - span;
    let tags: Vec<Arc<str>> = TAGS.iter().map(|t| Arc::from(*t)).collect();

    let groups = generate_groups(params.groups, origin);
    let organizations =
        generate_organizations(&mut rng, params.organizations, origin, latest, &tags);
    let (users, agent_ids) = generate_users(&mut rng, params, &organizations, origin, latest);
    let end_user_ids: Vec<u64> = users
        .iter()
        .filter(|u| u.role == Role::EndUser)
        .map(|u| u.id)
        .collect();

    let mut world = TicketWorld {
        rng: &mut rng,
        users: &users,
        end_user_ids: &end_user_ids,
        agent_ids: &agent_ids,
        groups: &groups,
        tags: &tags,
        latest,
        span,
        audits: Vec::new(),
        ratings: Vec::new(),
    };
    let mut tickets = Vec::with_capacity(params.tickets as usize);
    for index in 0..params.tickets {
        tickets.push(world.ticket(u64::from(index) + 1));
    }
    let TicketWorld {
        mut audits,
        mut ratings,
        ..
    } = world;
    number_in_creation_order(&mut tickets, &mut audits, &mut ratings);

    audits.sort_by_key(|a| (a.timestamp, a.ticket_id, a.id));
    for (i, audit) in audits.iter_mut().enumerate() {
        audit.id = AUDIT_ID_BASE + i as u64 + 1;
    }
    ratings.sort_by_key(|r| (r.created_at, r.ticket_id));
    for (i, rating) in ratings.iter_mut().enumerate() {
        rating.id = RATING_ID_BASE + i as u64 + 1;
        if let (Some(ticket), Ok(index)) = (
            tickets.get_mut((rating.ticket_id - 1) as usize),
            u32::try_from(i),
        ) {
            ticket.rating = Some(index);
        }
    }

    Dataset {
        ticket_order: SortedIndex::from_unsorted(
            tickets
                .iter()
                .map(|t| (t.generated_timestamp, t.id))
                .collect(),
        ),
        tickets,
        user_order: SortedIndex::from_unsorted(
            users.iter().map(|u| (u.updated_at, u.id)).collect(),
        ),
        users,
        organization_order: SortedIndex::from_unsorted(
            organizations.iter().map(|o| (o.updated_at, o.id)).collect(),
        ),
        organizations,
        groups,
        rating_order: SortedIndex::from_unsorted(
            ratings.iter().map(|r| (r.created_at, r.id)).collect(),
        ),
        ratings,
        audits,
        agent_ids,
    }
}

/// Renumbers the tickets 1, 2, ... in the order they were created, as Zendesk numbers them: ticket ids
/// are one counter per instance (the public fixtures show it, e.g. zenpy's `start_time=0` export, whose
/// ids rise with `created_at`). The history and ratings follow their tickets.
fn number_in_creation_order(tickets: &mut [Ticket], audits: &mut [Audit], ratings: &mut [Rating]) {
    tickets.sort_by_key(|t| (t.created_at, t.id));
    // Old id - 1 -> new id.
    let mut renumbered = vec![0_u64; tickets.len()];
    for (index, ticket) in tickets.iter_mut().enumerate() {
        let new_id = index as u64 + 1;
        renumbered[(ticket.id - 1) as usize] = new_id;
        ticket.id = new_id;
    }
    for audit in audits.iter_mut() {
        audit.ticket_id = renumbered[(audit.ticket_id - 1) as usize];
    }
    for rating in ratings.iter_mut() {
        rating.ticket_id = renumbered[(rating.ticket_id - 1) as usize];
    }
}

fn generate_groups(count: u32, origin: i64) -> Vec<Group> {
    (0..count)
        .map(|i| {
            let base = GROUP_NAMES[i as usize % GROUP_NAMES.len()];
            let round = i as usize / GROUP_NAMES.len();
            let name = if round == 0 {
                base.to_string()
            } else {
                format!("{base} {}", round + 1)
            };
            let created_at = origin - 60 * DAY + i64::from(i) * 3600;
            Group {
                id: GROUP_ID_BASE + u64::from(i) + 1,
                description: format!("{name} team").into_boxed_str(),
                name: name.into_boxed_str(),
                default: i == 0,
                created_at,
                updated_at: created_at,
            }
        })
        .collect()
}

fn generate_organizations(
    rng: &mut StdRng,
    count: u32,
    origin: i64,
    latest: i64,
    tags: &[Arc<str>],
) -> Vec<Organization> {
    let combos = ORG_ADJECTIVES.len() * ORG_NOUNS.len();
    let mut organizations: Vec<Organization> = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        let adjective = ORG_ADJECTIVES[i % ORG_ADJECTIVES.len()];
        let noun = ORG_NOUNS[(i / ORG_ADJECTIVES.len()) % ORG_NOUNS.len()];
        let kind = ORG_KINDS[(i / combos) % ORG_KINDS.len()];
        let round = i / (combos * ORG_KINDS.len());
        let slug = format!("{}{}", adjective.to_lowercase(), noun.to_lowercase());
        let (name, domain) = if i < combos {
            (
                format!("{adjective} {noun} {kind}"),
                format!("{slug}.example.com"),
            )
        } else {
            (
                format!(
                    "{adjective} {noun} {kind}{}",
                    if round > 0 {
                        format!(" {}", round + 1)
                    } else {
                        String::new()
                    }
                ),
                format!("{slug}-{}.example.com", i / combos + 1),
            )
        };
        let mut domain_names = vec![domain.clone().into_boxed_str()];
        if rng.random_bool(0.2) {
            domain_names.push(
                domain
                    .replace(".example.com", ".example.org")
                    .into_boxed_str(),
            );
        }
        let tier = weighted(rng, &[("gold", 15), ("silver", 35), ("bronze", 50)]);
        let account_id = if i > 0 && rng.random_bool(0.02) {
            // A second organization of an existing account (subsidiary, second region).
            organizations[i - 1]
                .organization_fields
                .get("account_id")
                .cloned()
                .unwrap_or(Value::Null)
        } else if rng.random_bool(0.85) {
            Value::String(format!("acct-{:04}", i + 1))
        } else {
            Value::Null
        };
        let mut organization_fields = Map::new();
        organization_fields.insert("account_id".into(), account_id);
        organization_fields.insert("tier".into(), Value::String(tier.into()));
        let created_at = between(rng, origin - 365 * DAY, origin + (latest - origin) / 2);
        let updated_at = between(rng, created_at, latest);
        let org_tags: Box<[Arc<str>]> = if tier == "gold" {
            tags.iter().filter(|t| &***t == "vip").cloned().collect()
        } else {
            Box::new([])
        };
        organizations.push(Organization {
            id: ORG_ID_BASE + i as u64 + 1,
            name: name.into_boxed_str(),
            domain_names,
            external_id: rng
                .random_bool(0.9)
                .then(|| format!("ext-{:05}", i + 1).into_boxed_str()),
            organization_fields,
            tags: org_tags,
            group_id: None,
            created_at,
            updated_at,
        });
    }
    organizations
}

fn generate_users(
    rng: &mut StdRng,
    params: &GenParams,
    organizations: &[Organization],
    origin: i64,
    latest: i64,
) -> (Vec<User>, Vec<u64>) {
    let agents = (params.users / 100).clamp(2, 25);
    let mut users = Vec::with_capacity((params.users + agents + 1) as usize);
    let mut agent_ids = Vec::with_capacity(agents as usize + 1);
    let admin_created = origin - 90 * DAY;
    users.push(User {
        id: USER_ID_BASE + 1,
        name: "Simulator Admin".into(),
        email: params.admin_email.clone().into_boxed_str(),
        organization_id: None,
        role: Role::Admin,
        created_at: admin_created,
        updated_at: admin_created,
        active: true,
        time_zone: 6,
    });
    agent_ids.push(USER_ID_BASE + 1);
    for a in 0..agents {
        let id = USER_ID_BASE + users.len() as u64 + 1;
        let first = pick(rng, FIRST_NAMES);
        let last = pick(rng, LAST_NAMES);
        let created_at = between(rng, origin - 60 * DAY, origin);
        users.push(User {
            id,
            name: format!("{first} {last}").into_boxed_str(),
            email: format!("agent{}@support.example.com", a + 1).into_boxed_str(),
            organization_id: None,
            role: Role::Agent,
            created_at,
            updated_at: between(rng, created_at, latest),
            active: true,
            time_zone: rng.random_range(0..TIME_ZONES.len() as u8),
        });
        agent_ids.push(id);
    }
    for u in 0..params.users {
        let id = USER_ID_BASE + users.len() as u64 + 1;
        let first = pick(rng, FIRST_NAMES);
        let last = pick(rng, LAST_NAMES);
        let organization = if !organizations.is_empty() && rng.random_bool(0.9) {
            Some(&organizations[rng.random_range(0..organizations.len())])
        } else {
            None
        };
        let domain = organization
            .and_then(|o| o.domain_names.first())
            .map_or("mail.example.net", |d| &**d);
        let created_at = between(rng, origin - 180 * DAY, latest - DAY);
        users.push(User {
            id,
            name: format!("{first} {last}").into_boxed_str(),
            email: format!(
                "{}.{}{}@{domain}",
                first.to_lowercase(),
                last.to_lowercase(),
                u + 1
            )
            .into_boxed_str(),
            organization_id: organization.and_then(|o| nz(o.id)),
            role: Role::EndUser,
            created_at,
            updated_at: between(rng, created_at, latest),
            active: rng.random_bool(0.97),
            time_zone: rng.random_range(0..TIME_ZONES.len() as u8),
        });
    }
    (users, agent_ids)
}

/// Everything ticket generation reads, plus the audits and ratings it produces.
struct TicketWorld<'a> {
    rng: &'a mut StdRng,
    users: &'a [User],
    end_user_ids: &'a [u64],
    agent_ids: &'a [u64],
    groups: &'a [Group],
    tags: &'a [Arc<str>],
    latest: i64,
    span: i64,
    audits: Vec<Audit>,
    ratings: Vec<Rating>,
}

impl TicketWorld<'_> {
    fn final_status(&mut self, age: i64) -> Status {
        use Status::{Closed, Deleted, Hold, New, Open, Pending, Solved};
        if age > 28 * DAY {
            weighted(
                self.rng,
                &[
                    (Closed, 72),
                    (Solved, 15),
                    (Open, 4),
                    (Pending, 3),
                    (Hold, 2),
                    (New, 1),
                    (Deleted, 3),
                ],
            )
        } else if age > 5 * DAY {
            weighted(
                self.rng,
                &[
                    (Solved, 40),
                    (Closed, 12),
                    (Open, 20),
                    (Pending, 10),
                    (Hold, 5),
                    (New, 8),
                    (Deleted, 2),
                ],
            )
        } else {
            weighted(
                self.rng,
                &[
                    (New, 20),
                    (Open, 35),
                    (Pending, 15),
                    (Hold, 5),
                    (Solved, 23),
                    (Deleted, 2),
                ],
            )
        }
    }

    /// The status path from creation to `last`, with reopen cycles.
    fn status_path(&mut self, last: Status) -> Vec<Status> {
        use Status::{Closed, Hold, New, Open, Pending, Solved};
        let mut path = vec![New];
        if last == New {
            return path;
        }
        path.push(Open);
        if matches!(last, Solved | Closed | Open | Pending | Hold) {
            let cycles = weighted(self.rng, &[(0_u8, 85), (1, 12), (2, 3)]);
            for _ in 0..cycles {
                if self.rng.random_bool(0.5) {
                    path.push(Pending);
                    path.push(Open);
                }
                path.push(Solved);
                path.push(Open);
            }
        }
        match last {
            Pending | Hold => path.push(last),
            Solved => {
                if self.rng.random_bool(0.3) {
                    path.push(Pending);
                }
                path.push(Solved);
            }
            Closed => {
                path.push(Solved);
                path.push(Closed);
            }
            _ => {}
        }
        if self.rng.random_bool(0.3) {
            // Created by an agent straight into open.
            path.remove(0);
        }
        path
    }

    fn ticket(&mut self, id: u64) -> Ticket {
        let latest = self.latest;
        let r: f64 = self.rng.random();
        // Skewed towards recent tickets, as real backlogs are.
        let age = ((self.span as f64) * r.powf(1.6)) as i64 + 3600;
        let created_at = latest - age;
        let requester_id = if self.end_user_ids.is_empty() {
            USER_ID_BASE + 1
        } else {
            *pick(self.rng, self.end_user_ids)
        };
        let organization_id = self
            .users
            .get((requester_id - USER_ID_BASE - 1) as usize)
            .and_then(|u| u.organization_id);
        let submitter_id = if self.rng.random_bool(0.85) {
            requester_id
        } else {
            *pick(self.rng, self.agent_ids)
        };
        let via = weighted(
            self.rng,
            &[(Channel::Web, 50), (Channel::Email, 40), (Channel::Api, 10)],
        );
        let priority = weighted(
            self.rng,
            &[
                (None, 30),
                (Some(Priority::Low), 15),
                (Some(Priority::Normal), 35),
                (Some(Priority::High), 14),
                (Some(Priority::Urgent), 6),
            ],
        );
        let ticket_type = weighted(
            self.rng,
            &[
                (None, 40),
                (Some(0_u8), 30),
                (Some(1), 20),
                (Some(2), 5),
                (Some(3), 5),
            ],
        );
        let mut target = self.final_status(age);
        let deleted = target == Status::Deleted;
        if deleted {
            target = weighted(
                self.rng,
                &[(Status::New, 30), (Status::Open, 40), (Status::Solved, 30)],
            );
        }
        // Closed needs four quiet days after solving.
        if target == Status::Closed && age < 5 * DAY {
            target = Status::Solved;
        }
        let path = self.status_path(target);
        let group_id = if self.rng.random_bool(0.9) && !self.groups.is_empty() {
            nz(pick(self.rng, self.groups).id)
        } else {
            None
        };
        let assignee_id = if path.last() != Some(&Status::New) && self.rng.random_bool(0.92) {
            nz(*pick(self.rng, self.agent_ids))
        } else {
            None
        };

        // Times of the status transitions path[1..], strictly increasing, all before `latest`.
        let transitions = path.len().saturating_sub(1);
        let closed_gap = if target == Status::Closed { 4 * DAY } else { 0 };
        let window_end = (latest - closed_gap).max(created_at + 1);
        let horizon = between(self.rng, 600, 21 * DAY).min(window_end - created_at);
        let mut times: Vec<i64> = (0..transitions)
            .map(|_| between(self.rng, created_at + 1, created_at + horizon.max(1)))
            .collect();
        times.sort_unstable();
        for i in 0..times.len() {
            let floor = if i == 0 {
                created_at + 1
            } else {
                times[i - 1] + 1
            };
            times[i] = times[i].max(floor);
        }
        if target == Status::Closed && transitions >= 1 {
            let solved_time = if transitions >= 2 {
                times[transitions - 2]
            } else {
                created_at
            };
            times[transitions - 1] =
                (solved_time + closed_gap + between(self.rng, 0, 3600)).min(latest);
        }

        let initial_priority = if self.rng.random_bool(0.75) {
            priority
        } else if matches!(priority, Some(Priority::High | Priority::Urgent)) {
            weighted(
                self.rng,
                &[
                    (None, 30),
                    (Some(Priority::Low), 20),
                    (Some(Priority::Normal), 50),
                ],
            )
        } else {
            weighted(
                self.rng,
                &[
                    (None, 30),
                    (Some(Priority::Low), 20),
                    (Some(Priority::Normal), 30),
                    (Some(Priority::High), 20),
                ],
            )
            .filter(|p| Some(*p) != priority)
            .or(if priority.is_none() {
                Some(Priority::Normal)
            } else {
                None
            })
        };
        let updater = assignee_id.map_or(submitter_id, NonZeroU64::get);
        self.audits.push(Audit {
            id: 0,
            ticket_id: id,
            timestamp: created_at,
            updater_id: submitter_id,
            via,
            create: true,
            status: path.first().map(|s| (None, *s)),
            priority: Some((None, initial_priority)),
            satisfaction: None,
        });
        let priority_step = if initial_priority != priority && transitions > 0 {
            Some(self.rng.random_range(0..transitions))
        } else {
            None
        };
        let mut solved_at = None;
        let mut reopens = 0_u16;
        for (step, time) in times.iter().enumerate() {
            let (from, to) = (path[step], path[step + 1]);
            if matches!(from, Status::Solved | Status::Closed)
                && !matches!(to, Status::Solved | Status::Closed)
            {
                reopens += 1;
                solved_at = None;
            }
            if to == Status::Solved {
                solved_at = Some(*time);
            }
            self.audits.push(Audit {
                id: 0,
                ticket_id: id,
                timestamp: *time,
                updater_id: if to == Status::Closed {
                    USER_ID_BASE + 1
                } else {
                    updater
                },
                via: Channel::Web,
                create: false,
                status: Some((Some(from), to)),
                priority: (priority_step == Some(step)).then_some((initial_priority, priority)),
                satisfaction: None,
            });
        }
        let mut last_change = times.last().copied().unwrap_or(created_at);
        if initial_priority != priority && transitions == 0 {
            let at = between(self.rng, created_at + 1, (created_at + 3 * DAY).min(latest));
            self.audits.push(Audit {
                id: 0,
                ticket_id: id,
                timestamp: at,
                updater_id: updater,
                via: Channel::Web,
                create: false,
                status: None,
                priority: Some((initial_priority, priority)),
                satisfaction: None,
            });
            last_change = last_change.max(at);
        }

        let status = if deleted { Status::Deleted } else { target };
        let mut updated_at = last_change;
        if let (Some(solved), true) = (solved_at, self.rng.random_bool(0.45)) {
            let score = weighted(
                self.rng,
                &[(Score::Offered, 35), (Score::Good, 50), (Score::Bad, 15)],
            );
            let comment = match score {
                Score::Good if self.rng.random_bool(0.55) => Some(*pick(self.rng, GOOD_COMMENTS)),
                Score::Bad if self.rng.random_bool(0.55) => Some(*pick(self.rng, BAD_COMMENTS)),
                _ => None,
            };
            let rated_at = (solved + between(self.rng, 600, 2 * DAY)).min(latest);
            updated_at = updated_at.max(rated_at);
            self.ratings.push(Rating {
                id: 0,
                ticket_id: id,
                score,
                comment: comment.map(Box::from),
                requester_id,
                assignee_id,
                group_id,
                created_at: rated_at,
                updated_at: rated_at,
            });
        }
        if deleted {
            updated_at = between(self.rng, updated_at, latest);
        }
        let generated_timestamp = if self.rng.random_bool(0.1) {
            (updated_at + between(self.rng, 1, 3600))
                .min(latest)
                .max(updated_at)
        } else {
            updated_at
        };
        let status_updated_at = times.last().copied().unwrap_or(created_at);
        let tag_count = weighted(self.rng, &[(0_usize, 40), (1, 35), (2, 20), (3, 5)]);
        let mut tags: Vec<Arc<str>> = Vec::with_capacity(tag_count);
        for _ in 0..tag_count {
            let tag = pick(self.rng, self.tags).clone();
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        tags.sort();
        let template = self.rng.random_range(0..SUBJECTS.len()) as u16;
        Ticket {
            id,
            created_at,
            updated_at,
            generated_timestamp,
            status,
            priority,
            ticket_type,
            via,
            requester_id,
            submitter_id,
            assignee_id,
            group_id,
            organization_id,
            subject: Text::Template(template),
            tags: tags.into_boxed_slice(),
            solved_at: solved_at.filter(|_| matches!(target, Status::Solved | Status::Closed)),
            assigned_at: assignee_id.map(|_| (created_at + 300).min(latest)),
            status_updated_at,
            reopens,
            replies: if path.len() > 1 {
                self.rng.random_range(1..12)
            } else {
                0
            },
            rating: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(seed: u64) -> GenParams {
        GenParams {
            seed,
            tickets: 3_000,
            organizations: 60,
            users: 400,
            groups: 5,
            years: 2,
            admin_email: "admin@example.com".into(),
        }
    }

    const NOW: i64 = 1_750_000_000;

    #[test]
    fn same_seed_same_data() {
        assert_eq!(generate(&params(7), NOW), generate(&params(7), NOW));
    }

    #[test]
    fn different_seed_different_data() {
        assert_ne!(
            generate(&params(7), NOW).tickets,
            generate(&params(8), NOW).tickets
        );
    }

    #[test]
    fn spreads_are_realistic() {
        use Status::{Closed, Deleted, Hold, New, Open, Pending, Solved};
        let data = generate(&params(1), NOW);
        assert_eq!(data.tickets.len(), 3_000);
        for status in [New, Open, Pending, Hold, Solved, Closed, Deleted] {
            assert!(
                data.tickets.iter().any(|t| t.status == status),
                "no {status:?} ticket"
            );
        }
        assert!(data.tickets.iter().any(|t| t.priority.is_none()));
        assert!(data
            .tickets
            .iter()
            .any(|t| t.priority == Some(Priority::Urgent)));
        assert!(data.tickets.iter().any(|t| t.reopens > 0));
        for score in [Score::Offered, Score::Good, Score::Bad] {
            assert!(
                data.ratings.iter().any(|r| r.score == score),
                "no {score:?} rating"
            );
        }
        assert!(data.ratings.iter().any(|r| r.comment.is_some()));
        let oldest = data.tickets.iter().map(|t| t.created_at).min().unwrap();
        assert!(oldest < NOW - 365 * DAY, "tickets span the years");
        assert!(data
            .tickets
            .iter()
            .all(|t| t.generated_timestamp <= NOW - 60
                && t.updated_at <= t.generated_timestamp
                && t.created_at <= t.updated_at));
        assert!(data
            .organizations
            .iter()
            .all(|o| !o.domain_names.is_empty()));
        assert!(data
            .organizations
            .iter()
            .any(|o| o.organization_fields.get("account_id")
                == Some(&Value::String("acct-0001".into()))));
        assert!(data
            .users
            .iter()
            .filter(|u| u.role == Role::EndUser)
            .all(|u| u.email.contains('@')));
    }

    #[test]
    fn ticket_ids_follow_creation_with_history_and_ratings_attached() {
        let data = generate(&params(5), NOW);
        for (index, ticket) in data.tickets.iter().enumerate() {
            assert_eq!(ticket.id, index as u64 + 1);
        }
        assert!(data
            .tickets
            .windows(2)
            .all(|pair| pair[0].created_at <= pair[1].created_at));
        for audit in data.audits.iter().filter(|audit| audit.create) {
            let ticket = &data.tickets[(audit.ticket_id - 1) as usize];
            assert_eq!(audit.timestamp, ticket.created_at, "ticket {}", ticket.id);
        }
        assert!(!data.ratings.is_empty());
        for (index, rating) in data.ratings.iter().enumerate() {
            let ticket = &data.tickets[(rating.ticket_id - 1) as usize];
            assert!(
                rating.created_at >= ticket.created_at,
                "rating {}",
                rating.id
            );
            let latest = ticket.rating.map(|latest| latest as usize);
            assert!(
                latest >= Some(index),
                "rating {} of ticket {}",
                rating.id,
                ticket.id
            );
        }
    }

    #[test]
    fn history_ends_in_the_current_state() {
        let data = generate(&params(3), NOW);
        let mut last_status: Vec<Option<Status>> = vec![None; data.tickets.len()];
        let mut last_priority: Vec<Option<Option<Priority>>> = vec![None; data.tickets.len()];
        let mut reopens = vec![0_u16; data.tickets.len()];
        for pair in data.audits.windows(2) {
            assert!((pair[0].timestamp, pair[0].id) < (pair[1].timestamp, pair[1].id));
        }
        for audit in &data.audits {
            let i = (audit.ticket_id - 1) as usize;
            if let Some((previous, value)) = audit.status {
                assert_eq!(previous, last_status[i], "ticket {}", audit.ticket_id);
                if matches!(previous, Some(Status::Solved | Status::Closed))
                    && !matches!(value, Status::Solved | Status::Closed)
                {
                    reopens[i] += 1;
                }
                last_status[i] = Some(value);
            }
            if let Some((previous, value)) = audit.priority {
                if !audit.create {
                    assert_eq!(Some(previous), last_priority[i]);
                }
                last_priority[i] = Some(value);
            }
        }
        for (i, ticket) in data.tickets.iter().enumerate() {
            if ticket.status != Status::Deleted {
                assert_eq!(last_status[i], Some(ticket.status), "ticket {}", ticket.id);
            }
            assert_eq!(
                last_priority[i],
                Some(ticket.priority),
                "ticket {}",
                ticket.id
            );
            assert_eq!(reopens[i], ticket.reopens, "ticket {}", ticket.id);
            assert!(data
                .audits
                .iter()
                .any(|a| a.ticket_id == ticket.id && a.create));
        }
    }
}
