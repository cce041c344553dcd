//! One test per routing rule, driven through the public sans-IO API on virtual time.

mod common;

use common::*;
use std::time::Duration;
use switchboard_model::{Capacity, Channel, MonoTime};
use switchboard_routing::*;

use Channel::{Chat, Email, Voice};

#[test]
fn higher_priority_is_served_first() {
    let mut r = router_with(vec![queue(1, vec![])], vec![]);
    feed(&mut r, t(1), arrival_with(1, 1, Voice, Some(1), None));
    feed(&mut r, t(2), arrival_with(2, 1, Voice, Some(5), None));
    feed(&mut r, t(3), arrival_with(3, 1, Voice, Some(3), None));
    assert_eq!(r.waiting(q(1)), vec![i(2), i(3), i(1)]);
    assert_eq!(r.position(i(1)), Some(3));
    feed(&mut r, t(4), Input::AgentUpserted(agent(1, &[])));
    let outs = feed(&mut r, t(4), present(1));
    assert_eq!(offers(&outs), vec![(i(2), a(1))]);
}

#[test]
fn fifo_within_a_priority_and_restart_keeps_original_order() {
    let mut r = router_with(vec![queue(1, vec![])], vec![]);
    feed(&mut r, t(10), arrival(1, 1, Voice));
    feed(&mut r, t(11), arrival(2, 1, Voice));
    // Restored after a restart: it was waiting since t=5, so it goes first.
    feed(&mut r, t(12), arrival_with(3, 1, Voice, None, Some(t(5))));
    // Same waiting_since as #1: arrival order breaks the tie.
    feed(&mut r, t(13), arrival_with(4, 1, Voice, None, Some(t(10))));
    assert_eq!(r.waiting(q(1)), vec![i(3), i(1), i(4), i(2)]);
    feed(&mut r, t(14), Input::AgentUpserted(agent(1, &[])));
    let outs = feed(&mut r, t(14), present(1));
    assert_eq!(offers(&outs), vec![(i(3), a(1))]);
}

#[test]
fn agents_below_the_minimum_level_are_not_eligible() {
    let mut r = router_with(
        vec![queue(1, vec![req(1, 5), req(2, 3)])],
        vec![
            agent(1, &[(1, 4), (2, 10)]), // too low on skill 1
            agent(2, &[(1, 9)]),          // lacks skill 2
            agent(3, &[(1, 5), (2, 3)]),  // exactly at the minimum
        ],
    );
    let outs = feed(&mut r, t(1), arrival(1, 1, Voice));
    assert_eq!(offers(&outs), vec![(i(1), a(3))]);
    let outs = feed(&mut r, t(2), arrival(2, 1, Voice));
    assert!(offers(&outs).is_empty(), "nobody else qualifies: {outs:?}");
}

#[test]
fn best_skill_match_wins() {
    let mut r = router_with(
        vec![queue(1, vec![req(1, 1), req(2, 1)])],
        vec![agent(1, &[(1, 5), (2, 2)]), agent(2, &[(1, 4), (2, 4)])],
    );
    let outs = feed(&mut r, t(1), arrival(1, 1, Voice));
    assert_eq!(offers(&outs), vec![(i(1), a(2))], "8 beats 7");
}

#[test]
fn equal_match_prefers_least_loaded_on_the_channel() {
    let mut r = router_with(
        vec![queue(1, vec![req(1, 1)])],
        vec![agent(1, &[(1, 5)]), agent(2, &[(1, 5)])],
    );
    // Agent 1 holds a chat (restored), agent 2 became available later (less idle).
    feed(
        &mut r,
        t(0),
        Input::InteractionRestored {
            interaction: i(99),
            agent: a(1),
            channel: Chat,
        },
    );
    let outs = feed(&mut r, t(1), arrival(1, 1, Chat));
    assert_eq!(offers(&outs), vec![(i(1), a(2))]);
}

#[test]
fn equal_match_and_load_prefers_longest_idle_then_agent_id() {
    let mut r = router_with(vec![queue(1, vec![req(1, 1)])], vec![]);
    for n in [3, 2, 1] {
        feed(&mut r, t(0), Input::AgentUpserted(agent(n, &[(1, 5)])));
    }
    feed(&mut r, t(5), present(3));
    feed(&mut r, t(5), present(2));
    feed(&mut r, t(7), present(1));
    // 2 and 3 are idle since t=5; 2 has the smaller id. 1 is idle since t=7.
    let outs = feed(&mut r, t(10), arrival(1, 1, Voice));
    assert_eq!(offers(&outs), vec![(i(1), a(2))]);
    let outs = feed(&mut r, t(10), arrival(2, 1, Voice));
    assert_eq!(offers(&outs), vec![(i(2), a(3))]);
    let outs = feed(&mut r, t(10), arrival(3, 1, Voice));
    assert_eq!(offers(&outs), vec![(i(3), a(1))]);
    // Agent 3 finishes first: its idle time restarts when its load drops.
    feed(&mut r, t(11), accept(2, 3));
    feed(&mut r, t(11), accept(1, 2));
    feed(&mut r, t(12), complete(2, 0));
    feed(&mut r, t(13), complete(1, 0));
    let outs = feed(&mut r, t(14), arrival(4, 1, Voice));
    assert_eq!(offers(&outs), vec![(i(4), a(3))]);
}

#[test]
fn capacity_is_counted_per_channel() {
    let mut spec = agent(1, &[]);
    spec.capacity = Capacity {
        per_channel: [(Chat, 2), (Email, 1)].into_iter().collect(),
        voice_exclusive: true,
    };
    let mut r = router_with(vec![queue(1, vec![])], vec![spec]);
    let mut offered = Vec::new();
    for n in 1..=3 {
        offered.extend(offers(&feed(&mut r, t(n as u64), arrival(n, 1, Chat))));
    }
    offered.extend(offers(&feed(&mut r, t(4), arrival(4, 1, Email))));
    offered.extend(offers(&feed(&mut r, t(5), arrival(5, 1, Voice))));
    assert_eq!(offered, vec![(i(1), a(1)), (i(2), a(1)), (i(4), a(1))]);
    assert_eq!(r.agent_load(a(1), Chat), Some(2));
    assert_eq!(r.agent_load(a(1), Email), Some(1));
    assert_eq!(r.agent_load(a(1), Voice), Some(0));
    assert_eq!(r.waiting(q(1)), vec![i(3), i(5)]);
    // A chat ends: the waiting chat takes its place.
    feed(&mut r, t(6), accept(1, 1));
    let outs = feed(&mut r, t(7), complete(1, 0));
    assert_eq!(offers(&outs), vec![(i(3), a(1))]);
}

#[test]
fn voice_is_exclusive_both_ways() {
    let mut r = router_with(vec![queue(1, vec![])], vec![agent(1, &[]), agent(2, &[])]);
    // Agent 1 gets a call, agent 2 a chat.
    assert_eq!(
        offers(&feed(&mut r, t(1), arrival(1, 1, Voice))),
        vec![(i(1), a(1))]
    );
    assert_eq!(
        offers(&feed(&mut r, t(2), arrival(2, 1, Chat))),
        vec![(i(2), a(2))]
    );
    // A chat may still go to agent 2 (capacity 3) but never to agent 1 on a call.
    assert_eq!(
        offers(&feed(&mut r, t(3), arrival(3, 1, Chat))),
        vec![(i(3), a(2))]
    );
    // A call goes to nobody: 1 is on a call, 2 holds chats.
    assert!(offers(&feed(&mut r, t(4), arrival(4, 1, Voice))).is_empty());

    // Without exclusivity the same agent takes both.
    let mut spec = agent(3, &[]);
    spec.capacity.voice_exclusive = false;
    let mut r = router_with(vec![queue(1, vec![])], vec![spec]);
    assert_eq!(
        offers(&feed(&mut r, t(1), arrival(1, 1, Voice))),
        vec![(i(1), a(3))]
    );
    assert_eq!(
        offers(&feed(&mut r, t(2), arrival(2, 1, Chat))),
        vec![(i(2), a(3))]
    );
}

#[test]
fn expired_offer_makes_agent_unavailable_and_returns_interaction_to_head() {
    let mut r = router_with(vec![queue(1, vec![])], vec![agent(1, &[])]);
    let outs = feed(&mut r, t(0), arrival(1, 1, Voice));
    let expires_at = match &outs[..] {
        [Output::Offer { expires_at, .. }] => *expires_at,
        other => panic!("expected one offer, got {other:?}"),
    };
    assert_eq!(expires_at, t(20));
    feed(&mut r, t(5), arrival(2, 1, Voice));
    assert_eq!(r.poll_timeout(), Some(t(20)));
    assert!(tick(&mut r, ms(19_999)).is_empty());
    let outs = tick(&mut r, t(20));
    assert_eq!(
        outs,
        vec![Output::OfferExpired {
            interaction: i(1),
            agent: a(1)
        }]
    );
    assert_eq!(r.is_available(a(1)), Some(false));
    assert_eq!(r.agent_load(a(1), Voice), Some(0));
    assert_eq!(r.waiting(q(1)), vec![i(1), i(2)], "back at the head");
    // Only AgentPresence brings the agent back; it gets the same interaction.
    let outs = feed(&mut r, t(30), present(1));
    assert_eq!(offers(&outs), vec![(i(1), a(1))]);
}

#[test]
fn rejected_offer_goes_back_to_head_and_to_another_agent() {
    let mut r = router_with(vec![queue(1, vec![])], vec![agent(1, &[]), agent(2, &[])]);
    feed(&mut r, t(0), arrival(1, 1, Voice)); // -> agent 1 (lower id)
    assert_eq!(
        offers(&feed(&mut r, t(0), arrival(2, 1, Voice))),
        vec![(i(2), a(2))]
    );
    feed(&mut r, t(1), arrival(3, 1, Voice));
    let outs = feed(&mut r, t(2), reject(1, 1));
    // Agent 1 stays available but is not offered #1 again; it takes #3 instead.
    assert_eq!(offers(&outs), vec![(i(3), a(1))]);
    assert_eq!(r.is_available(a(1)), Some(true));
    assert_eq!(r.waiting(q(1)), vec![i(1)]);
    // Agent 2 frees up: #1 (back at the head) goes to it.
    feed(&mut r, t(3), accept(2, 2));
    let outs = feed(&mut r, t(4), complete(2, 0));
    assert_eq!(offers(&outs), vec![(i(1), a(2))]);
}

#[test]
fn rejected_offer_returns_to_the_same_agent_after_the_cool_down() {
    let mut r = router_with(vec![queue(1, vec![])], vec![agent(1, &[])]);
    feed(&mut r, t(0), arrival(1, 1, Voice));
    feed(&mut r, t(3), arrival(2, 1, Voice));
    let outs = feed(&mut r, t(5), reject(1, 1));
    // Cool-down: #2 is offered meanwhile; reject it as well.
    assert_eq!(offers(&outs), vec![(i(2), a(1))]);
    let outs = feed(&mut r, t(6), reject(2, 1));
    assert!(offers(&outs).is_empty());
    assert_eq!(r.waiting(q(1)), vec![i(1), i(2)]);
    assert_eq!(
        r.poll_timeout(),
        Some(t(25)),
        "cool-down = offer_timeout after the reject"
    );
    assert!(offers(&tick(&mut r, ms(24_999))).is_empty());
    let outs = tick(&mut r, t(25));
    assert_eq!(offers(&outs), vec![(i(1), a(1))]);
}

#[test]
fn withdrawal_while_waiting_and_while_offered() {
    let mut r = router_with(vec![queue(1, vec![])], vec![agent(1, &[])]);
    feed(&mut r, t(0), arrival(1, 1, Voice));
    feed(&mut r, t(1), arrival(2, 1, Voice));
    feed(&mut r, t(2), arrival(3, 1, Voice));
    assert!(feed(&mut r, t(3), Input::InteractionWithdrawn(i(2))).is_empty());
    assert_eq!(r.waiting(q(1)), vec![i(3)]);
    // Withdrawing the offered one frees the reservation; the agent gets #3.
    let outs = feed(&mut r, t(4), Input::InteractionWithdrawn(i(1)));
    assert_eq!(offers(&outs), vec![(i(3), a(1))]);
    assert_eq!(r.agent_load(a(1), Voice), Some(1));
    assert!(r.waiting(q(1)).is_empty());
    // The expired offer's timer is gone with it.
    assert_eq!(r.poll_timeout(), Some(t(24)));
}

fn overflow(after: u64, target: OverflowTarget) -> OverflowRule {
    OverflowRule {
        after: Duration::from_secs(after),
        target,
    }
}

#[test]
fn overflow_to_skills_fires_at_the_deadline() {
    let mut spec = queue(1, vec![req(1, 8)]);
    spec.overflow = vec![overflow(30, OverflowTarget::Skills(vec![req(1, 3)]))];
    let mut r = router_with(vec![spec], vec![agent(1, &[(1, 5)])]);
    let outs = feed(&mut r, t(0), arrival(1, 1, Voice));
    assert!(offers(&outs).is_empty());
    assert_eq!(r.poll_timeout(), Some(t(30)));
    assert!(tick(&mut r, ms(29_999)).is_empty());
    let outs = tick(&mut r, t(30));
    assert_eq!(outs.len(), 2, "{outs:?}");
    assert_eq!(
        outs[0],
        Output::Overflowed {
            interaction: i(1),
            from: q(1),
            to: q(1),
            rule: 0
        }
    );
    assert_eq!(offers(&outs), vec![(i(1), a(1))]);
}

#[test]
fn overflow_to_queue_keeps_place_and_restarts_the_clock() {
    let mut q1 = queue(1, vec![req(1, 1)]);
    q1.overflow = vec![
        overflow(10, OverflowTarget::Queue(q(99))), // unknown: skipped
        overflow(10, OverflowTarget::Queue(q(2))),
    ];
    let mut q2 = queue(2, vec![req(2, 9)]);
    q2.overflow = vec![overflow(5, OverflowTarget::Skills(vec![req(2, 1)]))];
    let mut r = router_with(vec![q1, q2], vec![]);
    feed(&mut r, t(0), arrival(1, 1, Voice));
    feed(&mut r, t(3), arrival(2, 2, Voice));
    // #2's skills rule (3 + 5 = 8) and #1's queue move (10) both fire in this tick.
    let outs = tick(&mut r, t(10));
    assert_eq!(
        outs,
        vec![
            Output::Overflowed {
                interaction: i(2),
                from: q(2),
                to: q(2),
                rule: 0
            },
            Output::Overflowed {
                interaction: i(1),
                from: q(1),
                to: q(2),
                rule: 1
            }
        ]
    );
    // Waiting since t=0, it is ahead of #2 (since t=3) in queue 2.
    assert_eq!(r.waiting(q(2)), vec![i(1), i(2)]);
    assert!(r.waiting(q(1)).is_empty());
    // #1's clock restarted at the move: queue 2's rule fires at 10 + 5.
    assert_eq!(r.poll_timeout(), Some(t(15)));
    let outs = tick(&mut r, t(15));
    assert_eq!(
        outs,
        vec![Output::Overflowed {
            interaction: i(1),
            from: q(2),
            to: q(2),
            rule: 0
        }]
    );
    // An agent with a low level of skill 2 now takes #1 first.
    feed(&mut r, t(16), Input::AgentUpserted(agent(1, &[(2, 2)])));
    let outs = feed(&mut r, t(16), present(1));
    assert_eq!(offers(&outs), vec![(i(1), a(1))]);
}

#[test]
fn an_interactions_own_skills_are_needed_besides_its_queues() {
    // Queue 1 needs skill 1; interaction 2 also needs skill 7 (a flow's topic) at level 3.
    let mut r = router_with(
        vec![queue(1, vec![req(1, 1)])],
        vec![agent(1, &[(1, 9)]), agent(2, &[(1, 1), (7, 2)])],
    );
    let outs = feed(
        &mut r,
        t(0),
        arrival_needing(2, 1, Chat, vec![req(7, 3), req(7, 1)]),
    );
    assert!(
        offers(&outs).is_empty(),
        "nobody has skill 7 at level 3: {outs:?}"
    );
    assert_eq!(r.waiting(q(1)), vec![i(2)]);
    // A plain one of the same queue goes to the best match meanwhile.
    let outs = feed(&mut r, t(1), arrival(3, 1, Chat));
    assert_eq!(offers(&outs), vec![(i(3), a(1))]);
    // The skill at the right level comes with a new agent: it gets #2, though agent 1 is free
    // and better at skill 1.
    feed(
        &mut r,
        t(2),
        Input::AgentUpserted(agent(3, &[(1, 1), (7, 3)])),
    );
    let outs = feed(&mut r, t(2), present(3));
    assert_eq!(offers(&outs), vec![(i(2), a(3))]);
}

#[test]
fn own_skills_follow_an_overflow_to_another_queue_and_a_skills_overflow_replaces_them() {
    let mut q1 = queue(1, vec![req(1, 1)]);
    q1.overflow = vec![overflow(10, OverflowTarget::Queue(q(2)))];
    let mut q2 = queue(2, vec![req(2, 1)]);
    q2.overflow = vec![overflow(10, OverflowTarget::Skills(vec![req(2, 1)]))];
    // Agent 1 has queue 2's skill but not skill 7; agent 2 has both, but is away at first.
    let mut r = router_with(vec![q1, q2], vec![agent(1, &[(2, 5)])]);
    feed(
        &mut r,
        t(0),
        Input::AgentUpserted(agent(2, &[(2, 1), (7, 1)])),
    );
    feed(&mut r, t(0), arrival_needing(1, 1, Voice, vec![req(7, 1)]));
    // Moved to queue 2 at 10 s: skill 7 is still needed, so agent 1 gets nothing.
    let outs = tick(&mut r, t(10));
    assert!(offers(&outs).is_empty(), "{outs:?}");
    assert_eq!(r.waiting(q(2)), vec![i(1)]);
    // Queue 2's skills overflow at 20 s asks for skill 2 only: agent 1 takes it.
    let outs = tick(&mut r, t(20));
    assert_eq!(offers(&outs), vec![(i(1), a(1))]);
}

#[test]
fn a_queue_change_keeps_an_interactions_own_skills() {
    let mut r = router_with(vec![queue(1, vec![req(1, 1)])], vec![agent(1, &[(2, 1)])]);
    feed(&mut r, t(0), arrival_needing(1, 1, Chat, vec![req(3, 1)]));
    // The queue now needs skill 2, which agent 1 has: skill 3 is still missing.
    let outs = feed(
        &mut r,
        t(1),
        Input::QueueUpserted(queue(1, vec![req(2, 1)])),
    );
    assert!(offers(&outs).is_empty(), "{outs:?}");
    // Agent 1 (available all along) learns skill 3.
    let outs = feed(
        &mut r,
        t(2),
        Input::AgentUpserted(agent(1, &[(2, 1), (3, 1)])),
    );
    assert_eq!(offers(&outs), vec![(i(1), a(1))]);
}

#[test]
fn overflow_waits_while_offered_and_fires_when_back() {
    let mut spec = queue(1, vec![req(1, 5)]);
    spec.overflow = vec![overflow(10, OverflowTarget::Skills(vec![req(1, 1)]))];
    let mut r = router_with(vec![spec], vec![agent(1, &[(1, 5)])]);
    feed(&mut r, t(0), arrival(1, 1, Voice));
    assert_eq!(r.poll_timeout(), Some(t(20)), "only the offer timer runs");
    let outs = feed(&mut r, t(15), reject(1, 1));
    assert_eq!(
        outs,
        vec![Output::Overflowed {
            interaction: i(1),
            from: q(1),
            to: q(1),
            rule: 0
        }]
    );
}

#[test]
fn wrap_up_holds_capacity_until_it_finishes() {
    let mut r = router_with(vec![queue(1, vec![])], vec![agent(1, &[])]);
    feed(&mut r, t(0), arrival(1, 1, Voice));
    feed(&mut r, t(1), accept(1, 1));
    feed(&mut r, t(50), complete(1, 30));
    assert_eq!(r.agent_load(a(1), Voice), Some(1));
    assert!(offers(&feed(&mut r, t(60), arrival(2, 1, Voice))).is_empty());
    assert_eq!(r.poll_timeout(), Some(t(80)));
    let outs = tick(&mut r, t(80));
    assert_eq!(
        outs[0],
        Output::WrapUpFinished {
            interaction: i(1),
            agent: a(1)
        }
    );
    assert_eq!(offers(&outs), vec![(i(2), a(1))]);
    // Released (no wrap-up) frees at once and emits nothing.
    feed(&mut r, t(81), accept(2, 1));
    let outs = feed(&mut r, t(82), Input::InteractionReleased(i(2)));
    assert!(outs.is_empty());
    assert_eq!(r.agent_load(a(1), Voice), Some(0));
}

#[test]
fn estimated_wait_uses_position_staffing_and_measured_handle_time() {
    let mut r = Router::new(RouterConfig {
        handle_time_smoothing: 0.5,
    });
    r.handle_input(t(0), Input::QueueUpserted(queue(1, vec![])));
    for n in 1..=2 {
        r.handle_input(t(0), Input::AgentUpserted(agent(n, &[])));
        r.handle_input(t(0), present(n));
    }
    feed(&mut r, t(0), arrival(1, 1, Voice));
    feed(&mut r, t(0), arrival(2, 1, Voice));
    let outs = feed(&mut r, t(1), arrival(3, 1, Voice));
    assert_eq!(
        outs,
        vec![Output::EstimatedWait {
            interaction: i(3),
            queue: q(1),
            position: 1,
            wait: Duration::from_secs(30) // 1 * 60 s / 2 staffed
        }]
    );
    let outs = feed(&mut r, t(1), arrival_with(4, 1, Voice, Some(7), None));
    assert!(matches!(
        outs[..],
        [Output::EstimatedWait { position: 1, .. }]
    ));
    let outs = feed(&mut r, t(1), arrival(5, 1, Voice));
    assert_eq!(
        outs,
        vec![Output::EstimatedWait {
            interaction: i(5),
            queue: q(1),
            position: 3,
            wait: Duration::from_secs(90)
        }]
    );
    // A handle time of 120 s moves the average halfway: 90 s.
    feed(&mut r, t(1), accept(1, 1));
    let outs = feed(&mut r, t(121), complete(1, 10));
    assert!(outs.is_empty(), "wrap-up holds the agent: {outs:?}");
    let stats = r.queue_stats(q(1), t(121)).expect("queue exists");
    // 3 waiting -> a new arrival is 4th: 4 * 90 / 2.
    assert_eq!(stats.estimated_wait, Duration::from_secs(180));
}

#[test]
fn queue_stats_reports_the_figures() {
    let mut r = router_with(
        vec![queue(1, vec![req(1, 3)])],
        vec![
            agent(1, &[(1, 5)]),
            agent(2, &[(1, 5)]),
            agent(3, &[(1, 1)]),
        ],
    );
    feed(&mut r, t(0), Input::AgentUpserted(agent(4, &[(1, 9)]))); // not present
    feed(&mut r, t(10), arrival(1, 1, Voice));
    feed(&mut r, t(11), arrival(2, 1, Chat));
    feed(&mut r, t(12), arrival(3, 1, Voice));
    feed(&mut r, t(13), arrival_with(4, 1, Voice, Some(5), None));
    let stats = r.queue_stats(q(1), t(20)).expect("queue exists");
    assert_eq!(
        stats,
        QueueStats {
            waiting: 2,
            offered: 2,
            longest_wait: Duration::from_secs(8),
            staffed: 2,
            idle: 1,                                 // agent 2 holds a chat and may take more
            estimated_wait: Duration::from_secs(90), // 3 * 60 / 2
        }
    );
    assert_eq!(r.queue_stats(q(9), t(20)), None);
}

#[test]
fn restored_interactions_count_against_capacity() {
    let mut r = router_with(vec![queue(1, vec![])], vec![agent(1, &[]), agent(2, &[])]);
    let outs = feed(
        &mut r,
        t(0),
        Input::InteractionRestored {
            interaction: i(50),
            agent: a(1),
            channel: Voice,
        },
    );
    assert!(outs.is_empty());
    assert_eq!(r.agent_load(a(1), Voice), Some(1));
    assert_eq!(
        offers(&feed(&mut r, t(1), arrival(1, 1, Voice))),
        vec![(i(1), a(2))]
    );
    assert!(offers(&feed(&mut r, t(1), arrival(2, 1, Voice))).is_empty());
    // Completing the restored call frees agent 1 for #2.
    let outs = feed(&mut r, t(2), complete(50, 0));
    assert_eq!(offers(&outs), vec![(i(2), a(1))]);
}

#[test]
fn bad_inputs_are_ignored_and_change_nothing() {
    let mut r = router_with(vec![queue(1, vec![])], vec![agent(1, &[]), agent(2, &[])]);
    feed(&mut r, t(0), arrival(1, 1, Voice));
    feed(
        &mut r,
        t(0),
        Input::AgentPresence {
            agent: a(2),
            available: false,
        },
    );
    feed(&mut r, t(0), arrival(2, 1, Voice));
    let ign = |input, reason| vec![Output::Ignored { input, reason }];
    let cases = vec![
        (
            accept(9, 1),
            ign("offer_accepted", IgnoreReason::UnknownInteraction),
        ),
        (
            accept(1, 9),
            ign("offer_accepted", IgnoreReason::UnknownAgent),
        ),
        (
            accept(1, 2),
            ign("offer_accepted", IgnoreReason::WrongAgent),
        ),
        (
            accept(2, 1),
            ign("offer_accepted", IgnoreReason::WrongState),
        ),
        (
            reject(2, 1),
            ign("offer_rejected", IgnoreReason::WrongState),
        ),
        (
            arrival(1, 1, Chat),
            ign("interaction_arrived", IgnoreReason::Duplicate),
        ),
        (
            complete(2, 0),
            ign("interaction_completed", IgnoreReason::WrongState),
        ),
        (
            complete(9, 0),
            ign("interaction_completed", IgnoreReason::UnknownInteraction),
        ),
        (
            Input::InteractionReleased(i(1)),
            ign("interaction_released", IgnoreReason::WrongState),
        ),
        (
            Input::InteractionWithdrawn(i(9)),
            ign("interaction_withdrawn", IgnoreReason::UnknownInteraction),
        ),
        (
            Input::AgentRemoved(a(9)),
            ign("agent_removed", IgnoreReason::UnknownAgent),
        ),
        (
            present(9),
            ign("agent_presence", IgnoreReason::UnknownAgent),
        ),
        (
            Input::QueueRemoved(q(9)),
            ign("queue_removed", IgnoreReason::UnknownQueue),
        ),
        (
            Input::PriorityChanged {
                interaction: i(9),
                priority: 1,
            },
            ign("priority_changed", IgnoreReason::UnknownInteraction),
        ),
        (
            Input::InteractionRestored {
                interaction: i(1),
                agent: a(1),
                channel: Voice,
            },
            ign("interaction_restored", IgnoreReason::Duplicate),
        ),
        (
            Input::InteractionRestored {
                interaction: i(7),
                agent: a(9),
                channel: Voice,
            },
            ign("interaction_restored", IgnoreReason::UnknownAgent),
        ),
    ];
    for (input, expected) in cases {
        let label = format!("{input:?}");
        assert_eq!(feed(&mut r, t(1), input), expected, "{label}");
        assert_eq!(r.waiting(q(1)), vec![i(2)], "{label}");
        assert_eq!(r.agent_load(a(1), Voice), Some(1), "{label}");
        assert_eq!(r.poll_timeout(), Some(t(20)), "{label}");
    }
    feed(&mut r, t(2), accept(1, 1));
    assert_eq!(
        feed(&mut r, t(2), Input::InteractionWithdrawn(i(1))),
        ign("interaction_withdrawn", IgnoreReason::WrongState)
    );
    assert_eq!(
        feed(
            &mut r,
            t(2),
            Input::PriorityChanged {
                interaction: i(1),
                priority: 3
            }
        ),
        ign("priority_changed", IgnoreReason::WrongState)
    );
}

#[test]
fn unknown_and_removed_queues_withdraw_their_interactions() {
    let mut r = router_with(
        vec![queue(1, vec![]), queue(2, vec![])],
        vec![agent(1, &[])],
    );
    assert_eq!(
        feed(&mut r, t(0), arrival(1, 7, Voice)),
        vec![Output::Withdrawn {
            interaction: i(1),
            reason: WithdrawReason::NoSuchQueue
        }]
    );
    feed(&mut r, t(0), arrival(2, 1, Voice)); // offered to agent 1
    feed(&mut r, t(1), arrival(3, 1, Voice));
    feed(&mut r, t(2), arrival(4, 1, Voice));
    feed(&mut r, t(3), arrival(5, 2, Voice));
    let outs = feed(&mut r, t(4), Input::QueueRemoved(q(1)));
    let withdrawn = |n| Output::Withdrawn {
        interaction: i(n),
        reason: WithdrawReason::NoSuchQueue,
    };
    // Waiting and offered ones, in service order; the freed agent takes queue 2's.
    assert_eq!(
        outs,
        vec![
            withdrawn(2),
            withdrawn(3),
            withdrawn(4),
            Output::Offer {
                interaction: i(5),
                agent: a(1),
                queue: q(2),
                expires_at: t(24)
            }
        ]
    );
    assert_eq!(r.queue_stats(q(1), t(4)), None);
    assert_eq!(
        feed(&mut r, t(5), reject(2, 1)),
        vec![Output::Ignored {
            input: "offer_rejected",
            reason: IgnoreReason::UnknownInteraction
        }]
    );
}

#[test]
fn removed_agent_returns_its_offers_to_the_head() {
    let mut r = router_with(vec![queue(1, vec![])], vec![agent(1, &[])]);
    feed(&mut r, t(0), arrival(1, 1, Voice));
    feed(&mut r, t(1), arrival(2, 1, Voice));
    assert!(feed(&mut r, t(2), Input::AgentRemoved(a(1))).is_empty());
    assert_eq!(r.waiting(q(1)), vec![i(1), i(2)]);
    assert_eq!(r.agent_load(a(1), Voice), None);
    feed(&mut r, t(3), Input::AgentUpserted(agent(2, &[])));
    assert_eq!(offers(&feed(&mut r, t(3), present(2))), vec![(i(1), a(2))]);
}

#[test]
fn agent_upsert_keeps_presence_and_load_and_applies_new_skills() {
    let mut r = router_with(vec![queue(1, vec![req(1, 5)])], vec![agent(1, &[(1, 5)])]);
    feed(&mut r, t(0), arrival(1, 1, Chat));
    assert_eq!(r.agent_load(a(1), Chat), Some(1));
    // Losing the skill: the held offer stays, nothing new comes.
    feed(&mut r, t(1), Input::AgentUpserted(agent(1, &[(1, 2)])));
    assert!(offers(&feed(&mut r, t(2), arrival(2, 1, Chat))).is_empty());
    assert_eq!(r.agent_load(a(1), Chat), Some(1));
    assert_eq!(r.is_available(a(1)), Some(true));
    // Regaining it: the waiting chat is offered at once (capacity 3).
    let outs = feed(&mut r, t(3), Input::AgentUpserted(agent(1, &[(1, 7)])));
    assert_eq!(offers(&outs), vec![(i(2), a(1))]);
    assert_eq!(r.agent_load(a(1), Chat), Some(2));
}

#[test]
fn queue_upsert_applies_new_rules_to_waiting_interactions() {
    let mut r = router_with(vec![queue(1, vec![req(1, 9)])], vec![agent(1, &[(1, 4)])]);
    feed(&mut r, t(0), arrival(1, 1, Voice));
    assert_eq!(r.queue_stats(q(1), t(0)).map(|s| s.staffed), Some(0));
    let mut spec = queue(1, vec![req(1, 9)]);
    spec.overflow = vec![overflow(5, OverflowTarget::Skills(vec![req(1, 4)]))];
    // The rule is already due for #1 (waiting since 0): it fires and the agent gets it.
    let outs = feed(&mut r, t(6), Input::QueueUpserted(spec));
    assert_eq!(
        outs,
        vec![
            Output::Overflowed {
                interaction: i(1),
                from: q(1),
                to: q(1),
                rule: 0
            },
            Output::Offer {
                interaction: i(1),
                agent: a(1),
                queue: q(1),
                expires_at: t(26)
            }
        ]
    );
    // Lowering the base requirement makes the agent count as staffed.
    feed(
        &mut r,
        t(7),
        Input::QueueUpserted(queue(1, vec![req(1, 2)])),
    );
    assert_eq!(r.queue_stats(q(1), t(7)).map(|s| s.staffed), Some(1));
}

#[test]
fn priority_change_reorders_the_queue() {
    let mut r = router_with(vec![queue(1, vec![])], vec![]);
    feed(&mut r, t(0), arrival(1, 1, Voice));
    feed(&mut r, t(1), arrival(2, 1, Voice));
    feed(
        &mut r,
        t(2),
        Input::PriorityChanged {
            interaction: i(2),
            priority: 4,
        },
    );
    assert_eq!(r.waiting(q(1)), vec![i(2), i(1)]);
    assert_eq!(r.position(i(1)), Some(2));
}

#[test]
fn zero_delay_overflow_cycles_terminate() {
    let mut q1 = queue(1, vec![req(1, 1)]);
    q1.overflow = vec![overflow(0, OverflowTarget::Queue(q(2)))];
    let mut q2 = queue(2, vec![req(1, 1)]);
    q2.overflow = vec![overflow(0, OverflowTarget::Queue(q(1)))];
    let mut r = router_with(vec![q1, q2], vec![]);
    let outs = feed(&mut r, t(0), arrival(1, 1, Voice));
    let moves = outs
        .iter()
        .filter(|o| matches!(o, Output::Overflowed { .. }))
        .count();
    assert_eq!(moves, 2, "{outs:?}");
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn same_inputs_give_same_outputs() {
    let run = || {
        let mut r = router_with(
            vec![queue(1, vec![req(1, 1)]), queue(2, vec![])],
            (1..=5)
                .map(|n| agent(n, &[(1, (n % 3 + 1) as u8)]))
                .collect(),
        );
        let mut all = Vec::new();
        for n in 1..=20u128 {
            let ch = if n % 3 == 0 { Chat } else { Voice };
            all.extend(feed(&mut r, ms(n as u64 * 700), arrival(n, 1 + n % 2, ch)));
        }
        all.extend(tick(&mut r, MonoTime::from_secs(100)));
        all
    };
    let first = run();
    assert!(offers(&first).len() >= 5);
    assert_eq!(first, run());
}
