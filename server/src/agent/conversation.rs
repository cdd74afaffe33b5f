//! One conversation with a model, the same for every stage: its system prompt,
//! history, sampling settings and call tag, and the one place where a call is made
//! (cancel check, request, call count, `Llm::chat`, history). What differs between
//! stages stays with them: their prompts, how a reply is read (the bounded repair of
//! [`Conversation::ask_until`]) and where its edits go ([`apply_reply`]).

mod apply;

pub use apply::{apply_reply, Applied, EditTarget, NoVet, Vet, Vetted};

use tokio_util::sync::CancellationToken;

use crate::llm::{CallTag, ChatRequest, Image, Llm, LlmError, Message};

/// How much of the history a request carries. Kept in one place so that a cap on
/// the history, or a fresh context per phase, is decided once for every stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ContextPolicy {
    /// Every earlier turn.
    #[default]
    KeepAll,
    /// Only the turns from this index of the history on: a phase in a fresh context
    /// (see [`Conversation::fresh_phase`]).
    Since(usize),
    /// The first `head` messages (what the conversation is about: the task, the inputs)
    /// and the last `tail` (the exchange the next turn answers: a failed run's traceback,
    /// a refused edit); the turns between are left out, so a call's size stops growing
    /// with the turns before it. What a turn needs of them (the current files, earlier
    /// results) the stage puts in the turn. Both even, so user and assistant still alternate.
    Window { head: usize, tail: usize },
}

impl ContextPolicy {
    /// The messages of one request: what the policy keeps of `history`, then `turn`.
    pub fn messages(self, history: &[Message], turn: Message) -> Vec<Message> {
        match self {
            ContextPolicy::KeepAll => {
                let mut messages = Vec::with_capacity(history.len() + 1);
                messages.extend_from_slice(history);
                messages.push(turn);
                messages
            }
            ContextPolicy::Since(at) => {
                let mut messages = history.get(at..).unwrap_or_default().to_vec();
                messages.push(turn);
                messages
            }
            ContextPolicy::Window { head, tail } => {
                debug_assert!(head % 2 == 0 && tail % 2 == 0, "a window keeps whole exchanges");
                if history.len() <= head + tail {
                    return ContextPolicy::KeepAll.messages(history, turn);
                }
                let mut messages = Vec::with_capacity(head + tail + 1);
                messages.extend_from_slice(&history[..head]);
                messages.extend_from_slice(&history[history.len() - tail..]);
                messages.push(turn);
                messages
            }
        }
    }
}

/// Where a fresh phase began, and the policy to go back to.
#[derive(Debug, Clone, Copy)]
#[must_use = "end the phase with Conversation::end_phase"]
pub struct Phase {
    start: usize,
    policy: ContextPolicy,
}

pub struct Conversation<'a> {
    llm: &'a Llm,
    cancel: &'a CancellationToken,
    tag: CallTag,
    system: String,
    temperature: Option<f32>,
    max_tokens: u32,
    history: Vec<Message>,
    policy: ContextPolicy,
    calls: u32,
    /// Images that go with the next user turn (and stay with it in the history).
    images: Vec<Image>,
}

impl<'a> Conversation<'a> {
    pub fn new(
        llm: &'a Llm,
        cancel: &'a CancellationToken,
        tag: CallTag,
        system: impl Into<String>,
        temperature: Option<f32>,
        max_tokens: u32,
    ) -> Self {
        Self {
            llm,
            cancel,
            tag,
            system: system.into(),
            temperature,
            max_tokens,
            history: Vec::new(),
            policy: ContextPolicy::default(),
            calls: 0,
            images: Vec::new(),
        }
    }

    /// Starts a phase whose calls carry only its own turns (with the system prompt): what
    /// a call needs is in its prompt (e.g. a citation round: the current `.tex` and the
    /// round's listing), not the conversation so far. [`Conversation::end_phase`] drops
    /// the phase's turns again, so later calls do not carry them either.
    pub fn fresh_phase(&mut self) -> Phase {
        let phase = Phase {
            start: self.history.len(),
            policy: self.policy,
        };
        self.policy = ContextPolicy::Since(phase.start);
        phase
    }

    pub fn end_phase(&mut self, phase: Phase) {
        self.history.truncate(phase.start);
        self.policy = phase.policy;
    }

    /// Starts after earlier turns: inputs given once, or a conversation taken up again.
    pub fn with_history(mut self, history: Vec<Message>) -> Self {
        self.history = history;
        self
    }

    /// Images sent with the next prompt, e.g. a paper's figures with the paper.
    pub fn with_images(mut self, images: Vec<Image>) -> Self {
        self.images = images;
        self
    }

    /// Another history policy than keeping everything.
    pub fn with_policy(mut self, policy: ContextPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The idea the ledger books the next calls to (ideas get their Name mid-way).
    pub fn set_idea(&mut self, idea: &str) {
        self.tag.idea = Some(idea.to_string());
    }

    /// Calls made so far, failed ones included.
    pub fn calls(&self) -> u32 {
        self.calls
    }

    /// The turns kept so far, alternating user and assistant.
    pub fn history(&self) -> &[Message] {
        &self.history
    }

    /// `Err(Cancelled)` once the token is cancelled, for work a stage does before a
    /// call (reading the files it sends) that should not start then.
    pub fn check_cancelled(&self) -> Result<(), LlmError> {
        if self.cancel.is_cancelled() {
            Err(LlmError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Sends `prompt` after the history and keeps both it and the reply.
    pub async fn ask(&mut self, prompt: String) -> Result<String, LlmError> {
        self.send(prompt.clone(), prompt).await
    }

    /// Sends `sent`, which is `prompt` with volatile context around it (the current
    /// files), but keeps only `prompt`: the context would go stale in the history.
    pub async fn ask_with_context(&mut self, sent: String, prompt: String) -> Result<String, LlmError> {
        self.send(sent, prompt).await
    }

    async fn send(&mut self, sent: String, kept: String) -> Result<String, LlmError> {
        // Before the call: `Llm::chat` refuses an exhausted budget before it looks at
        // the token, and a cancelled stage should say so, not that.
        self.check_cancelled()?;
        let req = ChatRequest {
            system: Some(self.system.clone()),
            messages: self.policy.messages(
                &self.history,
                Message::user_with_images(sent, self.images.clone()),
            ),
            temperature: self.temperature,
            max_tokens: self.max_tokens,
        };
        self.calls += 1;
        // `Llm::chat` races the token itself; a failed call keeps the images for the next.
        let resp = self.llm.chat(self.tag.clone(), &req, self.cancel).await?;
        self.history
            .push(Message::user_with_images(kept, std::mem::take(&mut self.images)));
        self.history.push(Message::assistant(resp.text.clone()));
        Ok(resp.text)
    }

    /// Asks `prompt` and reads the reply with `parse`; while it is refused and calls
    /// are left (at most `max_calls`, at least one), sends `repair(problems)` in the same
    /// conversation. `Ok(Err(problems))`: the last reply was refused too.
    pub async fn ask_until<T, P>(
        &mut self,
        prompt: String,
        max_calls: u32,
        mut parse: impl FnMut(&str) -> Result<T, P>,
        repair: impl FnMut(&P) -> String,
    ) -> Result<Result<T, P>, LlmError> {
        let reply = self.ask(prompt).await?;
        match parse(&reply) {
            Ok(value) => Ok(Ok(value)),
            Err(problems) => self.repair(problems, max_calls.max(1) - 1, parse, repair).await,
        }
    }

    /// The repair half of [`Self::ask_until`], for a stage that found the problems
    /// itself: at most `max_calls` repair prompts.
    pub async fn repair<T, P>(
        &mut self,
        mut problems: P,
        max_calls: u32,
        mut parse: impl FnMut(&str) -> Result<T, P>,
        mut repair: impl FnMut(&P) -> String,
    ) -> Result<Result<T, P>, LlmError> {
        for _ in 0..max_calls {
            let reply = self.ask(repair(&problems)).await?;
            match parse(&reply) {
                Ok(value) => return Ok(Ok(value)),
                Err(p) => problems = p,
            }
        }
        Ok(Err(problems))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;

    use super::*;
    use crate::llm::{ChatResponse, Provider, Role, Usage};

    /// Answers from a script and keeps every request.
    #[derive(Default)]
    struct Script {
        replies: Mutex<Vec<&'static str>>,
        seen: Mutex<Vec<ChatRequest>>,
    }

    #[async_trait]
    impl Provider for Script {
        fn name(&self) -> &str {
            "script"
        }
        fn model(&self) -> &str {
            "m"
        }
        async fn chat(&self, req: &ChatRequest, _: &CancellationToken) -> Result<ChatResponse, LlmError> {
            self.seen.lock().unwrap().push(req.clone());
            Ok(ChatResponse {
                text: self.replies.lock().unwrap().remove(0).into(),
                usage: Usage::default(),
                model: String::new(),
                finish_reason: None,
            })
        }
    }

    fn setup(replies: Vec<&'static str>) -> (Arc<Script>, Llm) {
        let script = Arc::new(Script {
            replies: Mutex::new(replies),
            ..Default::default()
        });
        (script.clone(), Llm::new(script))
    }

    fn contents(messages: &[Message]) -> Vec<(Role, &str)> {
        messages.iter().map(|m| (m.role, m.content.as_str())).collect()
    }

    #[tokio::test]
    async fn context_is_sent_but_not_kept() {
        let (script, llm) = setup(vec!["a", "b"]);
        let cancel = CancellationToken::new();
        let mut conv = Conversation::new(&llm, &cancel, CallTag::new("s", Some("i")), "sys", Some(0.5), 7);
        assert_eq!(
            conv.ask_with_context("files + p1".into(), "p1".into())
                .await
                .unwrap(),
            "a"
        );
        conv.ask("p2".into()).await.unwrap();
        let seen = script.seen.lock().unwrap();
        assert_eq!(seen[0].system.as_deref(), Some("sys"));
        assert_eq!((seen[0].temperature, seen[0].max_tokens), (Some(0.5), 7));
        assert_eq!(contents(&seen[0].messages), [(Role::User, "files + p1")]);
        assert_eq!(
            contents(&seen[1].messages),
            [(Role::User, "p1"), (Role::Assistant, "a"), (Role::User, "p2")]
        );
        assert_eq!(conv.history().len(), 4);
        assert_eq!(conv.calls(), 2);
        assert_eq!(llm.records()[0].idea.as_deref(), Some("i"));
    }

    #[tokio::test]
    async fn ask_until_repairs_within_its_bound() {
        let (script, llm) = setup(vec!["x", "y", "ok"]);
        let cancel = CancellationToken::new();
        let mut conv = Conversation::new(&llm, &cancel, CallTag::new("s", None), "sys", None, 7);
        let parse = |t: &str| {
            if t == "ok" {
                Ok(t.len())
            } else {
                Err(format!("bad {t}"))
            }
        };
        let r = conv
            .ask_until("p".into(), 2, parse, |p| format!("fix: {p}"))
            .await
            .unwrap();
        assert_eq!(r, Err("bad y".to_string()));
        assert_eq!(conv.calls(), 2);
        assert_eq!(
            contents(&script.seen.lock().unwrap()[1].messages),
            [
                (Role::User, "p"),
                (Role::Assistant, "x"),
                (Role::User, "fix: bad x")
            ]
        );
        let r = conv
            .repair("again".to_string(), 3, parse, |p| p.clone())
            .await
            .unwrap();
        assert_eq!(r, Ok(2));
        assert_eq!(conv.calls(), 3);
    }

    #[tokio::test]
    async fn a_window_keeps_the_head_and_the_last_exchange() {
        let (script, llm) = setup(vec!["a1", "a2", "a3", "a4"]);
        let cancel = CancellationToken::new();
        let mut conv = Conversation::new(&llm, &cancel, CallTag::new("s", None), "sys", None, 7)
            .with_policy(ContextPolicy::Window { head: 2, tail: 2 });
        for p in ["p1", "p2", "p3", "p4"] {
            conv.ask(p.into()).await.unwrap();
        }
        let seen = script.seen.lock().unwrap();
        assert_eq!(
            contents(&seen[2].messages),
            [
                (Role::User, "p1"),
                (Role::Assistant, "a1"),
                (Role::User, "p2"),
                (Role::Assistant, "a2"),
                (Role::User, "p3")
            ]
        );
        assert_eq!(
            contents(&seen[3].messages),
            [
                (Role::User, "p1"),
                (Role::Assistant, "a1"),
                (Role::User, "p3"),
                (Role::Assistant, "a3"),
                (Role::User, "p4")
            ]
        );
        // The whole history is still kept (a resumed or inspected conversation has it).
        assert_eq!(conv.history().len(), 8);
    }

    #[tokio::test]
    async fn a_cancelled_conversation_makes_no_call() {
        let (script, llm) = setup(vec!["a"]);
        let cancel = CancellationToken::new();
        cancel.cancel();
        let mut conv = Conversation::new(&llm, &cancel, CallTag::new("s", None), "sys", None, 7);
        assert!(matches!(conv.ask("p".into()).await, Err(LlmError::Cancelled)));
        assert_eq!(conv.calls(), 0);
        assert!(script.seen.lock().unwrap().is_empty());
    }
}
