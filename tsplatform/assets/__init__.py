"""The Dagster assets, checks, jobs and sensors of the platform (thin wrappers of the pure core).

The graph relies on three Dagster APIs marked beta, on purpose: ``BackfillPolicy.single_run()`` (a day
range is one Spark job), ``TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)`` (the
first days' lookback windows reach before the first partition) and the automation sensor's
``use_user_code_server``. Their ``BetaWarning`` would print on every process that loads the definitions
(each run, the daemon, every CLI call), so it is silenced here, once.
"""

import warnings

import dagster as dg

warnings.filterwarnings("ignore", category=dg.BetaWarning)
