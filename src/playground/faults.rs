//! Fault injection for controller tests: fail the next N requests matching a verb and
//! resource with a chosen status code; cut off ONE client (matched by its User-Agent) by
//! failing or holding all its requests until healed; fail a seeded random share of one
//! client's requests (watches and lists included) with the codes a real server gives; and cut
//! one client off one resource (a router's backend down for the controller). Counts every
//! failure it injects. Shared state behind mutexes; touches nothing else.

use super::error::ApiError;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::sync::watch;

#[derive(Debug, Clone)]
struct Rule {
    verb: Option<String>,
    resource: Option<String>,
    code: u16,
    remaining: usize,
}

/// What happens to every request of a cut-off client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Answered at once with this HTTP code.
    Fail(u16),
    /// Not answered until the client is healed.
    Hold,
}

/// A seeded share of one client's requests that fail.
#[derive(Debug)]
struct Share {
    /// A User-Agent substring.
    agent: String,
    ratio: f64,
    rng: StdRng,
}

/// One client cut off one resource: (User-Agent substring, resource, HTTP code).
type ResourceCut = (String, String, u16);

/// The fault-injection knobs of a running playground.
#[derive(Debug)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    shares: Mutex<Vec<Share>>,
    resource_cuts: Mutex<Vec<ResourceCut>>,
    /// Failures injected so far, of every kind.
    injected: AtomicU64,
    /// Cut-off clients: a User-Agent substring and what their requests get.
    clients: Mutex<Vec<(String, Cut)>>,
    /// Bumped whenever `clients` changes, so held requests look again.
    generation: watch::Sender<u64>,
    /// Requests being held right now.
    held: AtomicUsize,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            rules: Mutex::default(),
            shares: Mutex::default(),
            resource_cuts: Mutex::default(),
            injected: AtomicU64::new(0),
            clients: Mutex::default(),
            generation: watch::channel(0).0,
            held: AtomicUsize::new(0),
        }
    }
}

/// Counts a held request for as long as it is held, however its handler ends.
struct HeldGuard<'a>(&'a AtomicUsize);

impl Drop for HeldGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Faults {
    /// Fail the next `count` requests whose verb (`get`, `list`, `watch`, `create`, `update`,
    /// `patch`, `delete`, `deletecollection`; `None` for any) and resource (plural, e.g.
    /// `replicasets` or `rollouts/status`; `None` for any) match, with HTTP `code`.
    pub fn fail_next(&self, verb: Option<&str>, resource: Option<&str>, code: u16, count: usize) {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        rules.push(Rule {
            verb: verb.map(str::to_string),
            resource: resource.map(str::to_string),
            code,
            remaining: count,
        });
    }

    /// Partition one client: every request whose User-Agent contains `agent` fails with HTTP
    /// `code` until [`Faults::heal_client`].
    pub fn fail_client(&self, agent: &str, code: u16) {
        self.cut(agent, Cut::Fail(code));
    }

    /// Hang one client: every request whose User-Agent contains `agent` gets no answer until
    /// [`Faults::heal_client`] (then it is served normally).
    pub fn hold_client(&self, agent: &str) {
        self.cut(agent, Cut::Hold);
    }

    /// Serve the client cut off by `fail_client` or `hold_client` again, held requests included.
    pub fn heal_client(&self, agent: &str) {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(a, _)| a != agent);
        self.generation.send_modify(|g| *g += 1);
    }

    /// How many requests are being held (by `hold_client`) right now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    fn cut(&self, agent: &str, cut: Cut) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.retain(|(a, _)| a != agent);
        clients.push((agent.to_string(), cut));
        drop(clients);
        self.generation.send_modify(|g| *g += 1);
    }

    fn cut_of(&self, user_agent: &str) -> Option<Cut> {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(a, _)| user_agent.contains(a.as_str()))
            .map(|(_, cut)| *cut)
    }

    /// Let a request of the client with this User-Agent through: at once when it is not cut
    /// off, after it is healed when it is held.
    ///
    /// # Errors
    /// The injected error when the client is failed.
    pub async fn admit(&self, user_agent: &str) -> Result<(), ApiError> {
        let mut changes = self.generation.subscribe();
        let mut guard = None;
        loop {
            match self.cut_of(user_agent) {
                None => return Ok(()),
                Some(Cut::Fail(code)) => {
                    self.injected.fetch_add(1, Ordering::Relaxed);
                    return Err(ApiError::Injected {
                        code,
                        message: format!("injected fault: this client fails with {code}"),
                    });
                }
                Some(Cut::Hold) => {
                    if guard.is_none() {
                        self.held.fetch_add(1, Ordering::SeqCst);
                        guard = Some(HeldGuard(&self.held));
                    }
                    // The sender lives as long as `self`; an error cannot happen while we
                    // borrow it, and would only end the hold.
                    if changes.changed().await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// How many injected failures are still pending.
    pub fn pending(&self) -> usize {
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|r| r.remaining)
            .sum()
    }

    /// Remove every pending fault.
    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.shares
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.resource_cuts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.generation.send_modify(|g| *g += 1);
    }

    /// Fail the share `ratio` (0 to 1) of the requests whose User-Agent contains `agent`, every
    /// verb, chosen by a generator seeded with `seed`: reads and watches with 500, 503 or 429,
    /// writes also with 409 (an update or patch that lost a race). Replaces an earlier share
    /// for the same agent. The seed fixes the sequence of draws, not which request meets which
    /// draw: requests arrive in the order the runtime schedules them.
    pub fn fail_share(&self, agent: &str, ratio: f64, seed: u64) {
        let mut shares = self.shares.lock().unwrap_or_else(|e| e.into_inner());
        shares.retain(|s| s.agent != agent);
        shares.push(Share {
            agent: agent.to_string(),
            ratio,
            rng: StdRng::seed_from_u64(seed),
        });
    }

    /// Cut the client whose User-Agent contains `agent` off `resource` (plural, e.g.
    /// `httproutes`; its subresources too): each of its requests there fails with HTTP `code`
    /// until [`Faults::heal_resource`]. Other clients are served.
    pub fn cut_resource(&self, agent: &str, resource: &str, code: u16) {
        let mut cuts = self.resource_cuts.lock().unwrap_or_else(|e| e.into_inner());
        cuts.retain(|(a, r, _)| !(a == agent && r == resource));
        cuts.push((agent.to_string(), resource.to_string(), code));
    }

    /// Serve `agent` on `resource` again.
    pub fn heal_resource(&self, agent: &str, resource: &str) {
        self.resource_cuts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(a, r, _)| !(a == agent && r == resource));
    }

    /// How many failures were injected so far, of every kind.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// The injected error for this request from the client with this User-Agent: a pending
    /// rule (consuming one use of it), a resource cut, or a draw of its client's share.
    pub fn check_request(&self, verb: &str, resource: &str, agent: &str) -> Option<ApiError> {
        let error = self
            .check(verb, resource)
            .or_else(|| self.resource_cut(resource, agent))
            .or_else(|| self.share_draw(verb, resource, agent))?;
        self.injected.fetch_add(1, Ordering::Relaxed);
        Some(error)
    }

    fn resource_cut(&self, resource: &str, agent: &str) -> Option<ApiError> {
        let base = resource.split('/').next().unwrap_or(resource);
        let cuts = self.resource_cuts.lock().unwrap_or_else(|e| e.into_inner());
        let (_, _, code) = cuts
            .iter()
            .find(|(a, r, _)| agent.contains(a.as_str()) && r == base)?;
        Some(ApiError::Injected {
            code: *code,
            message: format!("injected fault: {resource} is cut off for this client"),
        })
    }

    fn share_draw(&self, verb: &str, resource: &str, agent: &str) -> Option<ApiError> {
        let mut shares = self.shares.lock().unwrap_or_else(|e| e.into_inner());
        let share = shares
            .iter_mut()
            .find(|s| agent.contains(s.agent.as_str()))?;
        if !share.rng.random_bool(share.ratio.clamp(0.0, 1.0)) {
            return None;
        }
        let codes: &[u16] = match verb {
            "update" | "patch" => &[500, 503, 429, 409],
            _ => &[500, 503, 429],
        };
        let code = codes[share.rng.random_range(0..codes.len())];
        Some(ApiError::Injected {
            code,
            message: format!("injected fault: {verb} {resource} failed at random with {code}"),
        })
    }

    /// The injected error for this request, if a rule matches (consuming one use of it).
    fn check(&self, verb: &str, resource: &str) -> Option<ApiError> {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let base = resource.split('/').next().unwrap_or(resource);
        let idx = rules.iter().position(|r| {
            r.remaining > 0
                && r.verb.as_deref().is_none_or(|v| v == verb)
                && r.resource.as_deref().is_none_or(|x| {
                    x == resource || (!x.contains('/') && x == base && !resource.contains('/'))
                })
        })?;
        let rule = &mut rules[idx];
        rule.remaining -= 1;
        let code = rule.code;
        if rule.remaining == 0 {
            rules.remove(idx);
        }
        Some(ApiError::Injected {
            code,
            message: format!("injected fault: {verb} {resource} fails with {code}"),
        })
    }
}
