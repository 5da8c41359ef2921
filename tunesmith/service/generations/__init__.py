"""Generation jobs in the service: what the endpoints do (`jobs`), recording and queueing submits in batches
(`submits`) and the job as a worker runs it around the pipeline (`tasks`)."""
