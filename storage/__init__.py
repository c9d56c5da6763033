"""Persistence: the models, the database engine and the queries, one module per aggregate."""
