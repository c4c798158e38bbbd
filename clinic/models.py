from django.db import models


class RateLimitCounter(models.Model):
    """POSTs one address sent to one bucket in one fixed window (clinic.ratelimit counts them).

    The table is UNLOGGED (migration 0001): a counter is cheap to write, is not replicated, and
    after a database crash starts again from empty, which only forgives a few POSTs.
    """

    pk = models.CompositePrimaryKey("bucket", "address", "window_start")
    bucket = models.CharField(max_length=40)
    address = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.bucket} {self.address} {self.window_start:%H:%M:%S}: {self.count}"
