"""postgres: the aws flavour with Debian's PostgreSQL as the serving store."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from kappa.spec import PostgresSink

from ..stand_ins import LOOPBACK, PostgresServer, debian_postgres
from .aws import AwsFlavour
from .base import Flavour, Settings

POSTGRES_DATABASE = "kappa"
POSTGRES_USER = "kappa"


class PostgresFlavour(AwsFlavour):
    name = "postgres"
    stand_ins = "moto's server: Kinesis, S3; Debian's PostgreSQL"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.server: PostgresServer | None = None

    def start(self, stack: ExitStack) -> None:
        super().start(stack)
        self.server = stack.enter_context(
            debian_postgres(self.settings.ports.postgres, POSTGRES_DATABASE, POSTGRES_USER)
        )

    def adopt(self, started: Flavour) -> None:
        super().adopt(started)
        assert isinstance(started, PostgresFlavour)
        self.server = started.server

    def _connect(self) -> Any:
        import psycopg

        assert self.server is not None, "start() first"
        return psycopg.connect(
            host=self.server.host,
            port=self.server.port,
            dbname=self.server.database,
            user=self.server.user,
            password=self.server.password,
            sslmode="disable",
            autocommit=True,
        )

    def _create_table(self) -> None:
        # The job creates its table; a run starts from an empty one.
        from psycopg import sql

        with self._connect() as connection:
            connection.execute(
                sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(self.spec().serving_table))
            )

    def _sink(self) -> PostgresSink:
        return PostgresSink(
            host=LOOPBACK,
            port=self.settings.ports.postgres,
            database=POSTGRES_DATABASE,
            user=POSTGRES_USER,
            table="aggregates",
            # Loopback only, so no TLS (Debian's cluster offers only a snakeoil certificate).
            sslmode="disable",
        )

    def job_env(self) -> dict[str, str]:
        assert self.server is not None, "start() first"
        sink = self._sink()
        return {**super().job_env(), sink.password_env: self.server.password}

    def serving_rows(self) -> list[dict[str, Any]]:
        from psycopg import sql
        from psycopg.rows import dict_row

        with self._connect() as connection, connection.cursor(row_factory=dict_row) as cursor:
            cursor.execute(
                sql.SQL("SELECT * FROM {}").format(sql.Identifier(self.spec().serving_table))
            )
            return [dict(row) for row in cursor.fetchall()]

    def ports_used(self) -> tuple[int, ...]:
        # The cluster counts when this run started it: it is stopped again at the end. One
        # that was already running is left running.
        started = self.server is not None and self.server.started
        return (*super().ports_used(), *((self.settings.ports.postgres,) if started else ()))

    def locations(self) -> list[tuple[str, str]]:
        sink = self._sink()
        where = f"postgresql://{sink.user}@{sink.host}:{sink.port}/{sink.database}"
        return [
            *super().locations()[:-1],
            ("serving table", f"{self.spec().serving_table} in {where}"),
        ]
