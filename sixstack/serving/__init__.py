"The serving part: protocols, the served model, arms, the prediction log, the service and its pages."
