"""PostgreSQL backend that starts the embedded server on first connection.

Starting it lazily, here rather than in settings, means commands that never touch the
database (collectstatic, check, help) never start it, and a server killed while the app
runs is brought back by the next connection attempt instead of failing every request.
"""

from django.db.backends.postgresql import base, client

from clinic.embedded_db import EmbeddedDatabaseError, EmbeddedServer


def _server(settings_dict) -> EmbeddedServer:
    return EmbeddedServer.for_pgdata(settings_dict.get("EMBEDDED_PGDATA"))


class DatabaseClient(client.DatabaseClient):
    def runshell(self, parameters):
        _server(self.connection.settings_dict).ensure_running()
        super().runshell(parameters)


class DatabaseWrapper(base.DatabaseWrapper):
    client_class = DatabaseClient
    _known_running = False

    def get_new_connection(self, conn_params):
        server = _server(self.settings_dict)
        if not DatabaseWrapper._known_running:
            self._ensure_running(server)
            DatabaseWrapper._known_running = True
        try:
            return super().get_new_connection(conn_params)
        except self.Database.OperationalError:
            # The server may have been stopped or killed since we last saw it: start it once more.
            self._ensure_running(server)
            return super().get_new_connection(conn_params)

    def _ensure_running(self, server: EmbeddedServer) -> None:
        # A server that cannot be started is a database that cannot be reached: raised as the
        # driver's OperationalError, Django reports it as its own, and a request gets the 503 page.
        try:
            server.ensure_running()
        except (EmbeddedDatabaseError, OSError) as error:
            raise self.Database.OperationalError(f"The embedded PostgreSQL could not be started: {error}") from error
