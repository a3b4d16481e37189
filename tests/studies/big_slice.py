from benchmark import Section, Study, TrainConfig, vary


def study() -> Study:
    return Study(name="big_slice", baseline=TrainConfig(dataset="idx", train_size=100),
                 sections=[Section("H", vary("train_offset", [0, 300]))])
