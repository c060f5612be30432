"""Thin GraphQL resolvers per domain: authorize, call one service, shape the answer."""
