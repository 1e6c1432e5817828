//! The Zendesk Support API as zdsync sees it: client (auth, budget, retries), payload types, export streams.
