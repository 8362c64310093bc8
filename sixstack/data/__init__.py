"The data part: the data contract, loading, the sample generator, validation and drift statistics, report figures."
