from benchmark import Section, Study, TrainConfig, vary


def study() -> Study:
    return Study(name="bad_choice", baseline=TrainConfig(),
                 sections=[Section("A", vary("optimizer", ["sgd", "adma"]))])
