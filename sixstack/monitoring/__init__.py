"The monitoring part: checks and alert rules on the prediction log, reports and pages, A/B comparison."
