from benchmark import Section, Study, TrainConfig, vary


def study() -> Study:
    return Study(name="empty_axis", baseline=TrainConfig(),
                 sections=[Section("A", vary("width", []))])
