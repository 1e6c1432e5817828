//! A Zendesk Support API look-alike with seeded data, mutations and fault injection.
