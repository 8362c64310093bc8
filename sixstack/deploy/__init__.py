"The deploy part: the local production stack (PostgreSQL + an MLflow server)."
