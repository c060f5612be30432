"""Strawberry types, inputs and enums; ``schema.py`` assembles the schema."""
