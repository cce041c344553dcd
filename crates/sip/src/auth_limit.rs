//! Slowing and then blocking password guessing, per source address and per user.
//!
//! Every failed authentication counts against its source address (IPv6 by /64, since one
//! host owns a whole /64) and against the username it tried. Within a window, the first
//! failures cost nothing; after `slow_after` of them each further failure's answer is
//! delayed (doubling from `base_delay` up to `max_delay`); at `block_after` the source or user
//! is blocked for `block_for`, and blocked requests are refused at once without checking
//! anything. A success from an address makes that (user, address) pair trusted for
//! `trust_for`, and a trusted pair passes a *user* block: a scanner guessing one agent's
//! password from many addresses cannot lock the agent's own phone out.
//!
//! Memory is bounded by `max_tracked` per table; when a table is full of live entries, new
//! sources are not tracked but their failures get the longest delay. No clock reads: `now`
//! is passed in.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use switchboard_model::MonoTime;

/// Thresholds of an [`AuthLimiter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitConfig {
    /// Failures are counted within this window from the first one.
    pub window: Duration,
    /// Failures from one source before its answers are delayed.
    pub source_slow_after: u32,
    /// Failures from one source that block it.
    pub source_block_after: u32,
    /// Failures for one user (from untrusted sources) before answers are delayed.
    pub user_slow_after: u32,
    /// Failures for one user that block it (for untrusted sources).
    pub user_block_after: u32,
    /// How long a block lasts.
    pub block_for: Duration,
    /// The first delay.
    pub base_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// How long a successful (user, source) pair stays trusted.
    pub trust_for: Duration,
    /// Most entries per table (sources, users, trusted pairs).
    pub max_tracked: usize,
}

impl Default for LimitConfig {
    /// 60 s window; a source is slowed after 3 and blocked after 10 failures, a user after 5
    /// and 30; blocks last 5 minutes; delays 250 ms doubling to 2 s; trust lasts 24 h; 100 000
    /// entries per table.
    fn default() -> Self {
        LimitConfig {
            window: Duration::from_secs(60),
            source_slow_after: 3,
            source_block_after: 10,
            user_slow_after: 5,
            user_block_after: 30,
            block_for: Duration::from_secs(300),
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(2),
            trust_for: Duration::from_secs(24 * 3600),
            max_tracked: 100_000,
        }
    }
}

/// What is blocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockScope {
    /// A source address (IPv6: its /64).
    Source(IpAddr),
    /// A username.
    User(String),
}

/// The answer of [`AuthLimiter::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Go on and verify.
    Allow,
    /// Refuse at once: blocked until `until`.
    Blocked {
        /// What is blocked.
        scope: BlockScope,
        /// End of the block.
        until: MonoTime,
    },
}

/// The consequence of a failure, from [`AuthLimiter::record_failure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Penalty {
    /// Hold the answer back this long.
    pub delay: Duration,
    /// Failures of the source within its window, this one included.
    pub source_failures: u32,
    /// Blocks that this failure started (log them).
    pub blocked: Vec<(BlockScope, MonoTime)>,
}

/// Counters since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitStats {
    /// Failures recorded.
    pub failures: u64,
    /// Blocks started.
    pub blocks: u64,
    /// Requests refused because of a block.
    pub refused: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: MonoTime,
    failures: u32,
    blocked_until: Option<MonoTime>,
}

impl Entry {
    fn new(now: MonoTime) -> Entry {
        Entry {
            window_start: now,
            failures: 0,
            blocked_until: None,
        }
    }

    fn blocked(&self, now: MonoTime) -> Option<MonoTime> {
        self.blocked_until.filter(|u| *u > now)
    }

    fn is_live(&self, now: MonoTime, window: Duration) -> bool {
        self.blocked(now).is_some() || now.saturating_since(self.window_start) < window
    }

    /// Counts a failure; returns the count and whether a block started.
    fn fail(&mut self, now: MonoTime, cfg: &LimitConfig, block_after: u32) -> (u32, bool) {
        if self.blocked_until.is_some_and(|u| u <= now)
            || now.saturating_since(self.window_start) >= cfg.window
        {
            *self = Entry::new(now);
        }
        self.failures = self.failures.saturating_add(1);
        let start = self.failures >= block_after && self.blocked(now).is_none();
        if start {
            self.blocked_until = Some(now + cfg.block_for);
        }
        (self.failures, start)
    }
}

/// The key of a source: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by /64.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

fn delay_for(failures: u32, slow_after: u32, cfg: &LimitConfig) -> Duration {
    if failures <= slow_after {
        return Duration::ZERO;
    }
    let steps = (failures - slow_after - 1).min(16);
    cfg.base_delay
        .saturating_mul(1u32 << steps)
        .min(cfg.max_delay)
}

/// Failure counts and blocks; see the module docs.
#[derive(Debug)]
pub struct AuthLimiter {
    config: LimitConfig,
    sources: HashMap<IpAddr, Entry>,
    users: HashMap<String, Entry>,
    trusted: HashMap<(String, IpAddr), MonoTime>,
    stats: LimitStats,
}

impl AuthLimiter {
    /// A limiter with `config`.
    pub fn new(config: LimitConfig) -> AuthLimiter {
        AuthLimiter {
            config,
            sources: HashMap::new(),
            users: HashMap::new(),
            trusted: HashMap::new(),
            stats: LimitStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LimitConfig {
        &self.config
    }

    /// Counters since start.
    pub fn stats(&self) -> LimitStats {
        self.stats
    }

    fn is_trusted(&self, now: MonoTime, user: &str, source: IpAddr) -> bool {
        self.trusted
            .get(&(user.to_string(), source))
            .is_some_and(|until| *until > now)
    }

    /// Whether the source is blocked (checked before anything else is done for a request).
    pub fn source_blocked(&self, now: MonoTime, source: IpAddr) -> Option<MonoTime> {
        self.sources
            .get(&source_key(source))
            .and_then(|e| e.blocked(now))
    }

    /// May `user` at `source` try to authenticate now? Counts the refusal when not.
    pub fn check(&mut self, now: MonoTime, source: IpAddr, user: Option<&str>) -> Admission {
        let key = source_key(source);
        if let Some(until) = self.source_blocked(now, source) {
            self.stats.refused += 1;
            return Admission::Blocked {
                scope: BlockScope::Source(key),
                until,
            };
        }
        if let Some(user) = user
            && let Some(until) = self.users.get(user).and_then(|e| e.blocked(now))
            && !self.is_trusted(now, user, key)
        {
            self.stats.refused += 1;
            return Admission::Blocked {
                scope: BlockScope::User(user.to_string()),
                until,
            };
        }
        Admission::Allow
    }

    /// Counts a failed authentication of `user` (as the client named it) from `source`.
    pub fn record_failure(&mut self, now: MonoTime, source: IpAddr, user: &str) -> Penalty {
        self.stats.failures += 1;
        let key = source_key(source);
        let cfg = self.config.clone();
        let mut blocked = Vec::new();
        let mut delay = Duration::ZERO;
        let source_failures;
        if let Some(entry) = tracked(&mut self.sources, key, now, &cfg) {
            let (n, started) = entry.fail(now, &cfg, cfg.source_block_after);
            source_failures = n;
            delay = delay.max(delay_for(n, cfg.source_slow_after, &cfg));
            if started {
                blocked.push((BlockScope::Source(key), now + cfg.block_for));
            }
        } else {
            source_failures = u32::MAX;
            delay = cfg.max_delay;
        }
        if !self.is_trusted(now, user, key) {
            if let Some(entry) = tracked(&mut self.users, user.to_string(), now, &cfg) {
                let (n, started) = entry.fail(now, &cfg, cfg.user_block_after);
                delay = delay.max(delay_for(n, cfg.user_slow_after, &cfg));
                if started {
                    blocked.push((BlockScope::User(user.to_string()), now + cfg.block_for));
                }
            } else {
                delay = cfg.max_delay;
            }
        }
        self.stats.blocks += blocked.len() as u64;
        Penalty {
            delay,
            source_failures,
            blocked,
        }
    }

    /// Notes a successful authentication: the pair becomes trusted. The source's failures
    /// stay counted, or one valid account would let a guesser reset its count at will.
    pub fn record_success(&mut self, now: MonoTime, source: IpAddr, user: &str) {
        let key = source_key(source);
        let pair = (user.to_string(), key);
        if self.trusted.len() >= self.config.max_tracked && !self.trusted.contains_key(&pair) {
            self.trusted.retain(|_, until| *until > now);
            if self.trusted.len() >= self.config.max_tracked {
                return;
            }
        }
        self.trusted.insert(pair, now + self.config.trust_for);
    }

    /// Forgets entries whose window, block and trust have passed.
    pub fn handle_timeout(&mut self, now: MonoTime) {
        let window = self.config.window;
        self.sources.retain(|_, e| e.is_live(now, window));
        self.users.retain(|_, e| e.is_live(now, window));
        self.trusted.retain(|_, until| *until > now);
    }

    /// Entries held (sources, users, trusted pairs), for tests and metrics.
    pub fn tracked(&self) -> (usize, usize, usize) {
        (self.sources.len(), self.users.len(), self.trusted.len())
    }

    /// True when nothing is tracked (no periodic cleanup is needed).
    pub fn is_idle(&self) -> bool {
        self.sources.is_empty() && self.users.is_empty() && self.trusted.is_empty()
    }
}

/// The entry for `key`, created if there is room (after dropping dead entries).
fn tracked<'a, K: std::hash::Hash + Eq>(
    map: &'a mut HashMap<K, Entry>,
    key: K,
    now: MonoTime,
    cfg: &LimitConfig,
) -> Option<&'a mut Entry> {
    if !map.contains_key(&key) && map.len() >= cfg.max_tracked {
        map.retain(|_, e| e.is_live(now, cfg.window));
        if map.len() >= cfg.max_tracked {
            return None;
        }
    }
    Some(map.entry(key).or_insert_with(|| Entry::new(now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn slows_then_blocks_a_source_for_a_while() {
        let mut l = AuthLimiter::new(LimitConfig::default());
        let t = MonoTime::from_secs(100);
        let src = ip("192.0.2.7");
        let mut delays = Vec::new();
        for i in 0..10 {
            assert_eq!(l.check(t, src, Some("agent1")), Admission::Allow, "try {i}");
            let p = l.record_failure(t, src, "agent1");
            delays.push(p.delay.as_millis());
            if i == 9 {
                assert_eq!(
                    p.blocked,
                    vec![(BlockScope::Source(src), t + Duration::from_secs(300))]
                );
            } else {
                assert!(p.blocked.is_empty());
            }
        }
        assert_eq!(delays, [0, 0, 0, 250, 500, 1000, 2000, 2000, 2000, 2000]);
        assert!(matches!(
            l.check(t, src, Some("agent2")),
            Admission::Blocked {
                scope: BlockScope::Source(_),
                ..
            }
        ));
        // Another address is not affected; the user is not blocked yet.
        assert_eq!(
            l.check(t, ip("192.0.2.8"), Some("agent1")),
            Admission::Allow
        );
        // After the block the slate is clean.
        let later = t + Duration::from_secs(301);
        assert_eq!(l.check(later, src, Some("agent1")), Admission::Allow);
        assert_eq!(l.record_failure(later, src, "agent1").source_failures, 1);
        assert_eq!(l.stats().blocks, 1);
        assert_eq!(l.stats().refused, 1);
    }

    #[test]
    fn the_window_forgets_old_failures() {
        let mut l = AuthLimiter::new(LimitConfig::default());
        let src = ip("198.51.100.1");
        for i in 0..9 {
            l.record_failure(MonoTime::from_secs(i * 59), src, "u");
        }
        assert!(l.source_blocked(MonoTime::from_secs(600), src).is_none());
        l.handle_timeout(MonoTime::from_secs(10_000));
        assert!(l.is_idle());
    }

    #[test]
    fn user_block_spares_trusted_addresses() {
        let cfg = LimitConfig {
            source_block_after: 1000,
            ..LimitConfig::default()
        };
        let mut l = AuthLimiter::new(cfg);
        let t = MonoTime::from_secs(50);
        let phone = ip("10.0.0.5");
        l.record_success(t, phone, "agent1");
        for i in 0..30u8 {
            l.record_failure(t, IpAddr::from([203, 0, 113, i]), "agent1");
        }
        assert!(matches!(
            l.check(t, ip("203.0.113.200"), Some("agent1")),
            Admission::Blocked {
                scope: BlockScope::User(_),
                ..
            }
        ));
        assert_eq!(l.check(t, phone, Some("agent1")), Admission::Allow);
        // Failures from the trusted phone do not count against the user.
        assert_eq!(l.record_failure(t, phone, "agent1").blocked, vec![]);
    }

    #[test]
    fn ipv6_sources_count_by_prefix_and_tables_are_bounded() {
        let cfg = LimitConfig {
            max_tracked: 3,
            ..LimitConfig::default()
        };
        let mut l = AuthLimiter::new(cfg);
        let t = MonoTime::from_secs(1);
        for i in 0..10u16 {
            l.record_failure(
                t,
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i)),
                "x",
            );
        }
        assert!(l.source_blocked(t, ip("2001:db8:0:1::ffff")).is_some());
        for i in 0..5u8 {
            let p = l.record_failure(t, IpAddr::from([192, 0, 2, i]), &format!("u{i}"));
            if i >= 2 {
                // Tables full of live entries: untracked, but slowed to the maximum.
                assert_eq!(p.delay, Duration::from_secs(2));
            }
        }
        let (s, u, _) = l.tracked();
        assert!(s <= 3 && u <= 3);
        assert_eq!(source_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
